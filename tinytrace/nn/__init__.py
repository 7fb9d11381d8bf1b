"""Layers: ``Module`` trees with named parameters; calling one opens its scope."""
from . import functional, utils
from .layers import Dropout, Embedding, Linear, ReLU, Sequential, Sigmoid, Tanh
from .losses import BCEWithLogitsLoss, CrossEntropyLoss, MSELoss
from .module import Module, Parameter
from .cells import GRUCell, LSTMCell, RNNCell, UGRNNCell
from .recurrent import GRU, LSTM, RNN, UGRNN
from .stack import NeuralDequeRNN, NeuralQueueRNN, NeuralStackRNN, StackRNN
from .tape import NTMRNN, TapeRNN
from .attention import AttentionRNN, additive_attention, project_keys

__all__ = ["Module", "Parameter", "Linear", "Embedding", "Sequential", "ReLU", "Tanh",
           "Sigmoid", "Dropout", "CrossEntropyLoss", "MSELoss", "BCEWithLogitsLoss",
           "functional", "utils", "RNNCell", "LSTMCell", "GRUCell", "UGRNNCell", "RNN",
           "LSTM", "GRU", "UGRNN", "StackRNN", "NeuralStackRNN",
           "NeuralQueueRNN", "NeuralDequeRNN", "TapeRNN", "NTMRNN", "AttentionRNN",
           "additive_attention", "project_keys"]
