"""What `zoo lr-find`, `zoo tune` and `zoo train`'s tuning flags do; only argument handling,
the work is `zoo.training.tuning`'s."""

from zoo.cli.parser import data_kwargs


def _run_config(args, **fields):
    from zoo.cli.parser import devices
    from zoo.training import TrainConfig

    return TrainConfig(
        model=args.model, dataset=args.dataset, batch_size=args.batch_size,
        optimizer=args.optimizer, small=args.small, seed=args.seed,
        devices=devices(args.devices), cpu_replicas=args.cpu_replicas,
        dataset_kwargs=data_kwargs(args), verbose=1, **fields)


def lr_find_command(args):
    from zoo.training.tuning import find_learning_rate

    config = _run_config(args, out=args.out)
    find_learning_rate(config, start_lr=args.start_lr, end_lr=args.end_lr, steps=args.steps)
    return 0


def tune_command(args):
    from zoo.training.tuning import random_search

    config = _run_config(args, epochs=args.epochs)
    if args.quiet:
        config.verbose = 0
    random_search(config, trials=args.trials, space=dict(args.space) or None, out=args.out,
                  restart=args.restart)
    return 0


def apply_recipe_file(args):
    """`--recipe FILE`: its fields fill the flags that were not given (in place)."""
    if not getattr(args, "recipe", None):
        return
    from zoo.training.tuning import load_recipe_file

    for name, value in load_recipe_file(args.recipe).items():
        if getattr(args, name, None) is None:
            setattr(args, name, value)


def overfit_command(config, args):
    """`zoo train --overfit-batch N`: exit status 0 when the model memorised them, 1 if not."""
    from zoo.training.tuning import overfit_batch

    result = overfit_batch(config, examples=args.overfit_batch, max_steps=args.overfit_steps)
    print(result.message)
    return 0 if result.passed else 1
