"""Layers: ``Module`` trees with named parameters; calling one opens its scope."""
from . import functional, utils
from .layers import (Dropout, Embedding, Flatten, Identity, Linear, LogSoftmax, ReLU,
                     Sequential, Sigmoid, Softmax, Tanh)
from .losses import (BCEWithLogitsLoss, CrossEntropyLoss, HuberLoss, L1Loss, MSELoss, NLLLoss,
                     SmoothL1Loss)
from .module import Module, Parameter
from .cells import GRUCell, LSTMCell, RNNCell, UGRNNCell
from .recurrent import GRU, LSTM, RNN, UGRNN
from .stack import NeuralDequeRNN, NeuralQueueRNN, NeuralStackRNN, StackRNN
from .tape import NTMRNN, TapeRNN
from .attention import AttentionRNN, additive_attention, project_keys

__all__ = ["Module", "Parameter", "Linear", "Embedding", "Sequential", "ReLU", "Tanh",
           "Sigmoid", "Dropout", "Identity", "Flatten", "Softmax", "LogSoftmax",
           "CrossEntropyLoss", "MSELoss", "BCEWithLogitsLoss", "NLLLoss", "L1Loss",
           "SmoothL1Loss", "HuberLoss",
           "functional", "utils", "RNNCell", "LSTMCell", "GRUCell", "UGRNNCell", "RNN",
           "LSTM", "GRU", "UGRNN", "StackRNN", "NeuralStackRNN",
           "NeuralQueueRNN", "NeuralDequeRNN", "TapeRNN", "NTMRNN", "AttentionRNN",
           "additive_attention", "project_keys"]
