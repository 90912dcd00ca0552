"""The tuning workflow of the notes, as tools: the learning-rate range test
(`find_learning_rate`, `zoo lr-find`), per-layer training diagnostics (`Diagnostics`, `zoo train
--diagnostics`), the overfit check (`overfit_batch`, `zoo train --overfit-batch N`) and random
search over a recipe (`random_search`, `zoo tune`, KerasTuner), whose best trial is a recipe
file (`load_recipe_file`, `zoo train --recipe FILE`)."""

from zoo.training.tuning.diagnostics import Diagnostics, LayerProbe, warnings_for
from zoo.training.tuning.lr_finder import RangeTest, find_learning_rate
from zoo.training.tuning.overfit import OverfitResult, overfit_batch
from zoo.training.tuning.recipe_file import load_recipe_file, write_recipe_file
from zoo.training.tuning.search import SearchResult, random_search, search_space

__all__ = [
    "Diagnostics",
    "LayerProbe",
    "OverfitResult",
    "RangeTest",
    "SearchResult",
    "find_learning_rate",
    "load_recipe_file",
    "overfit_batch",
    "random_search",
    "search_space",
    "warnings_for",
    "write_recipe_file",
]
