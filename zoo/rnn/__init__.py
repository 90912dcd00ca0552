"""rnn models; each module registers its models on import.

Sequence classifiers (`rnn_classifier`, `lstm_classifier`, `gru_classifier`,
`bilstm_classifier`), their regressor forms for the adding problem (`rnn_regressor`,
`lstm_regressor`, `gru_regressor`), the character language model `char_lm`, and the
vanishing-gradient measurement `hidden_state_gradient_norms`. The cells ("rnn", "lstm",
"gru") and `default_optimizer` live in `zoo.rnn.cells`; the classifiers and regressors are
short functions over one builder in `zoo.rnn.classifiers` (its `VARIANTS` table).
"""

from zoo.rnn.cells import default_optimizer
from zoo.rnn.char_lm import CharLanguageModel, char_lm
from zoo.rnn.classifiers import (
    bilstm_classifier,
    gru_classifier,
    gru_regressor,
    lstm_classifier,
    lstm_regressor,
    rnn_classifier,
    rnn_regressor,
)
from zoo.rnn.gradients import hidden_state_gradient_norms, plot_gradient_norms

__all__ = [
    "CharLanguageModel",
    "bilstm_classifier",
    "char_lm",
    "default_optimizer",
    "gru_classifier",
    "gru_regressor",
    "hidden_state_gradient_norms",
    "lstm_classifier",
    "lstm_regressor",
    "plot_gradient_norms",
    "rnn_classifier",
    "rnn_regressor",
]
