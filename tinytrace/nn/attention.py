"""Additive attention (Bahdanau, Cho & Bengio 2015, "Neural Machine Translation by Jointly
Learning to Align and Translate") and an encoder-decoder RNN that uses it, traced op by op.

The attention is two plain functions of tensors, so it can be checked and drawn on its own:

* ``project_keys(keys, W_key, bias)``: ``k_j W_k + b`` for every position j, once per
  sequence (Bahdanau's ``U_a h_j``, which does not depend on the decoder: precomputing it
  saves a matrix product at every decoder step);
* ``additive_attention(query, keys, projected_keys, W_query, v, mask)``: the scores
  ``e_j = v . tanh(q W_q + k_j W_k + b)``, the weights ``softmax_j(e)`` over the allowed
  positions and the context ``sum_j a_j k_j``.

The scores are a function of the query *and of every key*: the weights depend on the
encoder's states. (A popular tutorial computes them from the decoder's input and hidden
state alone, ``softmax(Linear([embedded; hidden]))``, over a fixed maximal length; that is
not attention over the source, and the tests assert ours is.)

``AttentionRNN`` is the encoder-decoder in the stream form tinytrace's transduction tasks
use (``source # target`` read left to right, one symbol per step): see its docstring.
"""
import numpy as np

from .. import functions as F
from ..backend import asarray_like, to_device, to_host
from ..context import scope, scope_phrase
from ..errors import ShapeError
from ..random import generator
from ..tensor import Tensor
from .layers import Linear
from .recurrent import LSTM, RNN
from .stack import _StackAugmented

__all__ = ["AttentionRNN", "additive_attention", "project_keys"]


def _shape_error(who, message):
    raise ShapeError(f"{who} in {scope_phrase()}: {message}")


def project_keys(keys, W_key, bias=None):
    """``keys`` (B, S, K) -> ``keys @ W_key + bias`` (B, S, A): the keys' half of every
    score, ``k_j W_k + b``, computed once for a whole sequence of keys.

    ``W_key`` (K, A) (matrices act on row vectors here, as ``x @ W``); ``bias`` (A,) or
    None. (In ``AttentionRNN`` the bias sits here, not on the query side: one bias is
    enough, since the two halves are added.)
    """
    if keys.ndim != 3 or W_key.ndim != 2 or keys.shape[2] != W_key.shape[0]:
        _shape_error("project_keys", f"keys must be (B, S, K) and W_key (K, A), got keys "
                                     f"{tuple(keys.shape)} and W_key {tuple(W_key.shape)}")
    if bias is not None and tuple(bias.shape) != (W_key.shape[1],):
        _shape_error("project_keys", f"bias must be (A,) = ({W_key.shape[1]},) for W_key "
                                     f"{tuple(W_key.shape)}, got {tuple(bias.shape)}")
    projected = keys @ W_key
    return projected if bias is None else projected + bias


def _mask_array(mask, shape, who):
    """``mask`` (an array, nested list or Tensor of 0/1 or bools) as a host bool array of
    ``shape``; None stays None."""
    if mask is None:
        return None
    data = to_host(mask.data if isinstance(mask, Tensor) else np.asarray(mask))
    if tuple(data.shape) != tuple(shape):
        _shape_error(who, f"mask must be (B, S) = {tuple(shape)} like the keys, got "
                          f"{tuple(data.shape)}")
    return data != 0


def additive_attention(query, keys, projected_keys, W_query, v, mask=None):
    """Bahdanau et al.'s (2015) additive attention for a batch of queries.

    ``query`` q (B, H); ``keys`` k_1..k_S (B, S, K) (the encoder's annotations);
    ``projected_keys`` (B, S, A) = ``project_keys(keys, W_k, b)``; ``W_query`` W_q (H, A);
    ``v`` (A,); ``mask`` (B, S) of 0/1 (or bools), 1 where a position may be attended,
    None for all of them. With matrices acting on row vectors::

        e_j = v . tanh(q W_q + k_j W_k + b)                  scores        (B, S)
        a_j = exp(e_j) / sum_{i allowed} exp(e_i)            weights, for allowed j
        a_j = 0                                              for masked j
        c   = sum_j a_j k_j                                  context       (B, K)

    Returns ``(context, weights)``. Masked positions get weight exactly 0 (their scores
    are replaced by the dtype's most negative number before the softmax, so
    ``exp(. - max)`` underflows to 0) and therefore no gradient, neither through their
    score nor through their key. A row whose mask allows *nothing* gets all weights 0 and
    a zero context (nothing to read reads as nothing, like an empty memory), not an
    error: a padded or not-yet-started row is then harmless.

    Scopes: the scores in ``score``, the softmax in ``weights``, the weighted sum in
    ``context`` (under whatever scope the caller opened).
    """
    who = "additive_attention"
    if query.ndim != 2 or keys.ndim != 3 or keys.shape[0] != query.shape[0]:
        _shape_error(who, f"query must be (B, H) and keys (B, S, K) with the same B, got "
                          f"query {tuple(query.shape)} and keys {tuple(keys.shape)}")
    B, S, _ = keys.shape
    if W_query.ndim != 2 or W_query.shape[0] != query.shape[1]:
        _shape_error(who, f"W_query must be (H, A) with H = {query.shape[1]} for query "
                          f"{tuple(query.shape)}, got {tuple(W_query.shape)}")
    A = W_query.shape[1]
    if tuple(projected_keys.shape) != (B, S, A):
        _shape_error(who, f"projected_keys must be (B, S, A) = {(B, S, A)} for keys "
                          f"{tuple(keys.shape)} and W_query {tuple(W_query.shape)}, got "
                          f"{tuple(projected_keys.shape)}")
    if tuple(v.shape) != (A,):
        _shape_error(who, f"v must be (A,) = ({A},) for W_query {tuple(W_query.shape)}, got "
                          f"{tuple(v.shape)}")
    allowed = _mask_array(mask, (B, S), who)
    with scope("score"):
        hidden = F.tanh(projected_keys + (query @ W_query).reshape(B, 1, A))   # (B, S, A)
        scores = (hidden @ v.reshape(A, 1)).reshape(B, S)
    with scope("weights"):
        if allowed is None or allowed.all():
            weights = F.softmax(scores, axis=1)
        else:
            some = allowed.any(axis=1, keepdims=True)                  # (B, 1)
            # an empty row is softmaxed whole (finite numbers) and then zeroed below
            keep = allowed | ~some
            lowest = np.finfo(scores.dtype).min
            weights = F.softmax(F.where(keep, scores, lowest), axis=1)
            if not some.all():
                weights = weights * Tensor(asarray_like(some, scores.data, dtype=scores.dtype))
    with scope("context"):
        context = (weights.reshape(B, 1, S) @ keys).reshape(B, keys.shape[2])
    return context, weights


class AttentionRNN(_StackAugmented):
    """An encoder-decoder with additive attention (Bahdanau, Cho & Bengio 2015) in the
    stream form: one input stream x_1..x_T (e.g. ``source # target``), read left to right.

    An encoder RNN reads the stream and gives the annotations ``h^enc_1..h^enc_T``; a
    decoder (the controller) reads the same stream together with its last context and, at
    every step, attends with its new state over the encoder's annotations *so far*. At step
    t (1-based)::

        h^enc_t = encoder(x_t, h^enc_{t-1})                  encoder (RNN or LSTM, as the
                                                             controller)
        s_t     = cell([x_t; c_{t-1}], s_{t-1})              controller, c_0 = 0
        e_tj    = v . tanh(s_t W_q + h^enc_j W_k + b)        j = 1..t (and allowed by
                                                             memory_mask)
        a_tj    = softmax_j(e_tj),   c_t = sum_j a_tj h^enc_j
        o_t     = tanh([s_t; c_t] W_o + b_o)                 output (B, H)

    This is Bahdanau's decoder (query = the decoder's state, keys = values = the encoder's
    annotations, the previous context fed back into the recurrence) made causal: in the
    stream form, at step t the model has only seen x_1..x_t, so it attends only over those
    annotations, and the encoder is unidirectional (Bahdanau's is bidirectional, which a
    stream cannot be). The output is Luong et al.'s (2015) "attentional hidden state",
    the state and the context just read combined, so the context of step t is used at
    step t (with ``o_t = s_t`` alone it would wait for the next step); its size is
    ``hidden_size`` like the other memory layers', so a ``Linear`` on top works for all.

    ``attention_size`` A (default ``hidden_size``). Parameters: ``encoder`` (a ``tt.nn.RNN``
    or ``tt.nn.LSTM``, ``input_size -> hidden_size``; set ``model.encoder.mode = "fused"``
    to run it as one fast node when its steps need not be looked at), ``controller`` (the
    cell, input size ``input_size + hidden_size``), ``query`` (``Linear(H, A, bias=False)``:
    W_q), ``key`` (``Linear(H, A)``: W_k, b), ``score`` (``Linear(A, 1, bias=False)``: v),
    ``output`` (``Linear(2H, H)``: W_o, b_o).

    ``model(x, state=None, memory_mask=None)`` -> ``(output, state, record)``; x (T, B, I)
    (or (B, T, I) with ``batch_first``), output (T, B, H) (or (B, T, H)).

    ``memory_mask`` (T, B) of 0/1 or bools (``batch_first``: (B, T)): 1 where a position
    may be attended, by its own step and all later ones, e.g. only the source before '#'.
    Default: every position. A step that may attend nothing (all its positions so far
    masked) reads a zero context (see ``additive_attention``).

    ``state`` is ``(encoder_state, controller_state, context, annotations, keys, allowed)``:
    everything the stream needs to continue, so ``model(x2, state)`` attends over the
    earlier calls' annotations too and a stream cut in two gives the same outputs as the
    whole stream (``annotations`` (B, S, H) and their projections ``keys`` (B, S, A) are
    tensors, graph included; ``allowed`` (B, S) the host bool mask of those positions).

    ``record`` (time-major NumPy arrays): ``attention`` (T, B, S) the weights a_tj, zero
    where masked (every j after t, and every ``memory_mask`` 0), with S = the positions
    of earlier calls plus T; ``context`` (T, B, H) c_t.

    Scopes: the encoder in ``encoder`` (its own ``t=τ`` steps inside: ``encoder/t=3/
    hidden``), the key projection once per sequence in ``attention/keys``, then each step
    in ``t=τ``: ``controller`` (the cell), ``attention`` (``score``, ``weights``,
    ``context``) and ``output``. So ``tt.trace.split(loss, "*/attention/*", model)``
    weighs the gradient that passes through the attention (all of the encoder's and the
    attention's own, part of the controller's) against the rest.
    """

    def __init__(self, input_size, hidden_size, attention_size=None, controller="rnn",
                 nonlinearity="tanh", batch_first=False, dtype=np.float32, rng=None):
        rng = generator(rng)        # one stream for all sublayers (a seed would repeat)
        # the controller reads [x_t; c_{t-1}]: the context is an annotation, H wide
        super().__init__(input_size, hidden_size, hidden_size, controller, nonlinearity,
                         batch_first, dtype, rng)
        A = hidden_size if attention_size is None else attention_size
        if isinstance(A, bool) or not isinstance(A, (int, np.integer)) or A < 1:
            raise ValueError(f"AttentionRNN: attention_size must be a positive int, got "
                             f"{attention_size!r}")
        self.attention_size = int(A)
        if controller == "rnn":
            self.encoder = RNN(input_size, hidden_size, nonlinearity=nonlinearity,
                               dtype=dtype, rng=rng)
        else:
            self.encoder = LSTM(input_size, hidden_size, dtype=dtype, rng=rng)
        self.query = Linear(hidden_size, self.attention_size, bias=False, dtype=dtype, rng=rng)
        self.key = Linear(hidden_size, self.attention_size, dtype=dtype, rng=rng)
        self.score = Linear(self.attention_size, 1, bias=False, dtype=dtype, rng=rng)
        self.output = Linear(2 * hidden_size, hidden_size, dtype=dtype, rng=rng)

    def initial_state(self, batch_size, dtype=np.float32, device="cpu"):
        """Nothing read yet: zero encoder and controller states (None for the encoder:
        its own zeros), a zero context and no annotations."""
        context = Tensor(to_device(np.zeros((batch_size, self.hidden_size), dtype=dtype),
                                   device))
        return (None, self._initial_controller_state(batch_size, context.data), context,
                None, None, np.zeros((batch_size, 0), dtype=bool))

    def _memory_mask(self, memory_mask, T, B):
        """The (B, T) host bool mask of this call's positions."""
        if memory_mask is None:
            return np.ones((B, T), dtype=bool)
        data = to_host(memory_mask.data if isinstance(memory_mask, Tensor)
                       else np.asarray(memory_mask))
        want, names = ((B, T), "(B, T)") if self.batch_first else ((T, B), "(T, B)")
        if tuple(data.shape) != want:
            _shape_error("AttentionRNN", f"memory_mask must be {names} = {want} like the "
                                         f"input, got {tuple(data.shape)}")
        data = data != 0
        return data if self.batch_first else data.T

    def _check_state(self, state, B):
        if not isinstance(state, (tuple, list)) or len(state) != 6:
            raise ValueError(f"AttentionRNN in {scope_phrase()}: state must be the 6-tuple "
                             "(encoder_state, controller_state, context, annotations, keys, "
                             "allowed) a previous call returned")
        context, annotations, keys, allowed = state[2:]
        allowed = np.asarray(allowed, dtype=bool)
        S = allowed.shape[1] if allowed.ndim == 2 else 0
        want = {"allowed": (B, S), "context": (B, self.hidden_size)}
        if S:                                   # annotations None: nothing read yet
            want.update(annotations=(B, S, self.hidden_size), keys=(B, S, self.attention_size))
        values = {"allowed": allowed, "context": context, "annotations": annotations,
                  "keys": keys}
        for name, shape in want.items():
            got = None if values[name] is None else tuple(values[name].shape)
            if got != shape:
                _shape_error("AttentionRNN", f"state's {name} must be {shape} for a batch "
                                             f"of {B}, got {got}")
        return (*state[:3], annotations if S else None, keys if S else None, allowed)

    def forward(self, x, state=None, memory_mask=None):
        x = self._check_input(x)
        T, B, _ = x.shape
        allowed_now = self._memory_mask(memory_mask, T, B)
        if state is None:
            state = self.initial_state(B, x.dtype, x.device)
        enc_state, h_state, context, annotations, keys, allowed = self._check_state(state, B)
        P = allowed.shape[1]                          # positions read by earlier calls

        encoded, enc_state = self.encoder(x, enc_state)            # (T, B, H)
        new_annotations = encoded.transpose(1, 0, 2)               # (B, T, H)
        with scope("attention"):
            W_q, v = self.query.weight.T, self.score.weight.reshape(self.attention_size)
            with scope("keys"):                        # U_a h_j + b, once per sequence
                new_keys = project_keys(new_annotations, self.key.weight.T, self.key.bias)
        if annotations is not None:
            new_annotations = F.concat([annotations, new_annotations], axis=1)
            new_keys = F.concat([keys, new_keys], axis=1)
        annotations, keys = new_annotations, new_keys
        allowed = np.concatenate([allowed, allowed_now], axis=1)   # (B, P + T)
        with scope("output"):
            W_o, b_o = self.output.weight.T, self.output.bias
        step = self._controller_step()
        outputs, weights_rec, context_rec = [], [], []
        for t in range(T):
            causal = allowed.copy()
            causal[:, P + t + 1:] = False             # step t has read positions 0..P+t
            with scope(f"t={t}"):
                with scope("controller"):
                    h, h_state = step(F.concat([x[t], context], axis=1), h_state)
                with scope("attention"):
                    context, weights = additive_attention(h, annotations, keys, W_q, v,
                                                          mask=causal)
                with scope("output"):
                    out = F.tanh(F.concat([h, context], axis=1) @ W_o + b_o)
            outputs.append(out)
            weights_rec.append(weights.numpy())      # the record is host data (for plots)
            context_rec.append(context.numpy())
        record = {"attention": np.stack(weights_rec), "context": np.stack(context_rec)}
        state = (enc_state, h_state, context, annotations, keys, allowed)
        return self._finish(outputs), state, record

    def extra_repr(self):
        return super().extra_repr() + f", attention_size={self.attention_size}"
