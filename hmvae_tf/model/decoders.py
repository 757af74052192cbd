"""p(x|z): flat, hierarchical (conductor + core) and multi-track (one core per track) decoders.

One class covers all three. A flat decoder is the degenerate hierarchy with a single
subsequence whose embedding is z itself: z initialises the core LSTM state (tanh(dense)) and
is concatenated to every input. A hierarchical decoder first runs a conductor LSTM (zero
inputs, state from z) for one embedding per subsequence; each embedding then initialises and
conditions the core decoder for its bar(s). Multi-track models (trio) have one core decoder
per track under the same embeddings, each reading only its own track's previous token.

Teacher-forced, the subsequences are independent given their embeddings, so all of them run
as one batch. Autoregressive decoding (sampling, scheduled sampling) walks the steps in
order; the first step of bar k reads the last token of bar k-1. Sampling with seeded noise
can also decode every bar at once and iterate on those first inputs to the same tokens
(`autoregress_bars_in_parallel`).
"""
from __future__ import annotations

from typing import Callable, NamedTuple

import keras
import tensorflow as tf

from hmvae_tf.model.lstm import LSTMStack, gather_rows, gpu_available
from hmvae_tf.model.lstm_training import Activations

START = -1  # "no previous token": one-hot of -1 is the zero vector (Magenta's start input)


def _initial_state_init() -> keras.initializers.Initializer:
    """Magenta's `initial_cell_state_from_embedding` kernel: N(0, 0.001^2), so initial LSTM
    states start near zero (Keras' default glorot_uniform gave |state| ~ 0.24 at z 512)."""
    return keras.initializers.RandomNormal(stddev=0.001)


class CoreDecoder(keras.layers.Layer):
    """LSTM decoder for one track, conditioned on an embedding per subsequence."""

    def __init__(self, num_classes: int, units: tuple[int, ...], **kwargs):
        super().__init__(**kwargs)
        self.num_classes = num_classes
        self.rnn = LSTMStack(units, name="rnn")
        self.initial_state = keras.layers.Dense(self.rnn.state_size, activation="tanh",
                                                kernel_initializer=_initial_state_init(),
                                                name="initial_state")
        self.output_layer = keras.layers.Dense(num_classes, name="logits")

    def build(self, embedding_shape):
        """Builds the weights for embeddings of this shape, before the first call."""
        batch, emb = embedding_shape[0], embedding_shape[-1]
        self.initial_state.build((batch, emb))
        self.rnn.build((batch, None, self.num_classes + emb))
        self.output_layer.build((batch, self.rnn.units[-1]))

    def teacher_forced(self, previous: tf.Tensor, embedding: tf.Tensor, training: bool = False,
                       forward: list[list[Activations]] | None = None) -> tf.Tensor:
        """previous [N, S] token ids (START at the sequence start), embedding [N, E] ->
        logits [N, S, C]. forward: per layer, its activations on these inputs per batch
        shard, computed already (training on a CPU; `LSTMStack.run`)."""
        state = self.rnn.split_state(self.initial_state(embedding))
        if self.rnn.use_cudnn and gpu_available():
            steps = tf.shape(previous)[1]
            one_hot = tf.one_hot(previous, self.num_classes)
            condition = tf.tile(embedding[:, None, :], tf.stack([1, steps, 1]))
            outputs, _ = self.rnn(tf.concat([one_hot, condition], -1), state, training=training)
            return self.output_layer(outputs)
        # [one_hot(prev), embedding] @ kernel = gathered rows + the embedding's projection,
        # which is the same for every step of the subsequence.
        token_kernel, _ = self.rnn.input_kernels(self.num_classes)
        proj = (gather_rows(token_kernel, tf.transpose(previous))
                + self.rnn.project_condition(embedding, self.num_classes)[None])
        outputs, _ = self.rnn.run(proj, state, training=training, forward=forward)
        return tf.transpose(self.output_layer(outputs), [1, 0, 2])


class MusicDecoder(keras.layers.Layer):
    """Flat or hierarchical decoder over `len(track_classes)` tracks of `num_steps` steps."""

    def __init__(self, track_classes: tuple[int, ...], num_steps: int, dec_units: tuple[int, ...],
                 conductor_units: tuple[int, ...] = (), conductor_length: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.track_classes = tuple(track_classes)
        self.num_steps = num_steps
        self.hierarchical = bool(conductor_units)
        self.num_subsequences = conductor_length if self.hierarchical else 1
        if num_steps % self.num_subsequences:
            raise ValueError("conductor_length must divide the number of steps")
        self.subsequence_steps = num_steps // self.num_subsequences
        if self.hierarchical:
            self.conductor = LSTMStack(conductor_units, name="conductor")
            self.conductor_initial_state = keras.layers.Dense(
                self.conductor.state_size, activation="tanh",
                kernel_initializer=_initial_state_init(), name="conductor_initial_state")
        self.cores = [CoreDecoder(c, dec_units, name=f"core_{i}")
                      for i, c in enumerate(self.track_classes)]

    def build(self, z_shape):
        """Builds the conductor's and every core's weights for z of this shape."""
        batch, z_size = z_shape[0], z_shape[-1]
        emb = z_size
        if self.hierarchical:
            self.conductor_initial_state.build((batch, z_size))
            self.conductor.build((batch, self.num_subsequences, 1))
            emb = self.conductor.units[-1]
        for core in self.cores:
            core.build((batch, emb))

    def embeddings(self, z: tf.Tensor, training: bool = False) -> tf.Tensor:
        """z [B, Z] -> one conditioning embedding per subsequence [B, L, E]."""
        if not self.hierarchical:
            return z[:, None, :]
        state = self.conductor.split_state(self.conductor_initial_state(z))
        zeros = tf.zeros(tf.stack([tf.shape(z)[0], self.num_subsequences, 1]), z.dtype)
        outputs, _ = self.conductor(zeros, state, training=training)
        return outputs

    def teacher_forced_logits(self, z: tf.Tensor, targets: tf.Tensor, training: bool = False,
                              forward: list[list[list[Activations]]] | None = None
                              ) -> list[tf.Tensor]:
        """targets [B, T, K] -> logits per track, each [B, T, C_k].

        forward (flat decoders, training on a CPU): per track, per layer, the activations
        `autoregress(..., with_activations=True)` computed on these very inputs; the core
        LSTMs then run only their backward pass."""
        if forward is not None and self.hierarchical:
            raise ValueError("only a flat decoder reuses a step loop's activations")
        emb = self.embeddings(z, training=training)
        batch = tf.shape(z)[0]
        length, steps = self.num_subsequences, self.subsequence_steps
        flat_emb = tf.reshape(emb, tf.stack([batch * length, tf.shape(emb)[-1]]))
        logits = []
        for k, core in enumerate(self.cores):
            # Shift the whole sequence by one: bar k's first input is bar k-1's last token.
            previous = tf.pad(targets[:, :-1, k], [[0, 0], [1, 0]], constant_values=START)
            previous = tf.reshape(previous, tf.stack([batch * length, steps]))
            out = core.teacher_forced(previous, flat_emb, training=training,
                                      forward=None if forward is None else forward[k])
            logits.append(tf.reshape(out, tf.stack([batch, self.num_steps, core.num_classes])))
        return logits

    def autoregress(self, z: tf.Tensor, choose: Callable, targets: tf.Tensor | None = None,
                    use_target: tf.Tensor | None = None, return_logits: bool = False,
                    training: bool = False, with_activations: bool = False
                    ) -> tf.Tensor | tuple:
        """Decodes step by step, each step reading the previous step's token.

        choose(t, k, logits [B, C_k]) -> int32 tokens [B] picks track k's token at step t.
        With `targets` [B, T, K] and `use_target` bool [B, T], the next input is the target
        where use_target is set (scheduled sampling's inputs). Returns tokens [B, T, K] and,
        if asked, logits per track [B, T, C_k] (the tests compare them with teacher forcing's).

        Everything that does not change from step to step is computed before the loop: each
        subsequence's conditioning projection and initial state, a table of the first layer's
        input rows per token (row 0 for the start, all zeros), the stacked deeper kernels, and
        the output layer's weights (read once, not once per step).

        with_activations (flat decoders): also return, per track and layer, the
        `lstm_training.Activations` the loop went through, so that training's teacher-forced
        pass on the returned tokens can skip its forward (`teacher_forced_logits(forward=)`).
        """
        emb = self.embeddings(z, training=training)
        start = tf.fill(tf.stack([tf.shape(z)[0], len(self.cores)]), START)
        return self._run_loop(self._loop_constants(emb, self.num_subsequences), start, choose,
                              targets, use_target, return_logits, with_activations)

    def autoregress_bars_in_parallel(self, z: tf.Tensor, choose: Callable) -> tf.Tensor:
        """`autoregress(z, choose)` for a hierarchical decoder, by decoding every bar at once.

        choose(s, k, logits [B * L, C_k]) picks track k's token at step s of a bar, for the
        rows (sequence b, bar l) in b-major order; it must be deterministic (seeded noise),
        as `autoregress`'s chooser at step l * S + s of row b. Returns tokens [B, T, K].

        Given the conductor, a bar depends on the bars before it only through its first
        input, the previous bar's last token. So every bar is decoded in one batch from a
        guessed first input, the guesses are replaced by the last tokens just decoded, and
        this repeats until no guess changes (a fixed point, which is the sequential decode)
        or L rounds have run (after round r the first r bars are exact). One sample then
        reads the core decoder's weights S times per round instead of L x S times, which is
        what bounds a 1-row decode on a CPU; large batches, already bound by arithmetic,
        should keep `autoregress`.
        """
        emb = self.embeddings(z)
        batch, length = tf.shape(z)[0], self.num_subsequences
        steps, tracks = self.subsequence_steps, len(self.cores)
        # One row per (sequence, bar); the loop's constants are built once for every round.
        bar_loop = self._loop_constants(
            tf.reshape(emb, tf.stack([batch * length, 1, tf.shape(emb)[-1]])), 1)
        first = tf.fill(tf.stack([batch, 1, tracks]), START)

        def decode_bars(starts):  # starts [B, L, K] -> tokens [B, L, S, K]
            tokens = self._run_loop(
                bar_loop, tf.reshape(starts, tf.stack([batch * length, tracks])), choose)
            return tf.reshape(tokens, tf.stack([batch, length, steps, tracks]))

        def next_starts(tokens):
            return tf.concat([first, tokens[:, :-1, -1, :]], axis=1)

        def another_round(starts, tokens):
            starts = next_starts(tokens)
            return starts, decode_bars(starts)

        # Guess: every bar after the first starts after a NO_EVENT (id 0, "hold"). Round 1 is
        # decoded here, so at most L - 1 more are needed.
        starts = tf.concat([first, tf.zeros(tf.stack([batch, length - 1, tracks]), tf.int32)], 1)
        _, tokens = tf.while_loop(
            lambda starts, tokens: tf.reduce_any(tf.not_equal(next_starts(tokens), starts)),
            another_round, (starts, decode_bars(starts)), maximum_iterations=length - 1)
        return tf.reshape(tokens, tf.stack([batch, self.num_steps, tracks]))

    def _loop_constants(self, emb: tf.Tensor, length: int) -> _LoopConstants:
        """What the step loop over the embeddings [B, length, E] of `length` subsequences
        reads at every step, computed once however often the loop then runs."""
        tracks = []
        for core in self.cores:
            token_kernel, _ = core.rnn.input_kernels(core.num_classes)
            table = tf.pad(token_kernel, [[1, 0], [0, 0]])  # token id + 1; START -> zeros
            cond = tf.transpose(core.rnn.project_condition(emb, core.num_classes), [1, 0, 2])
            init = tf.transpose(core.initial_state(emb), [1, 0, 2])  # [L, B, state]
            if length > 1:
                # Read per subsequence through TensorArrays: slicing a captured tensor inside
                # a while loop would make its gradient a dense [L, ...] tensor per step.
                cond, init = _unstack(cond, length), _unstack(init, length)
            else:
                cond, init = cond[0], init[0]
            tracks.append((core, table, cond, init, core.rnn.step_weights(),
                           (tf.convert_to_tensor(core.output_layer.kernel),
                            tf.convert_to_tensor(core.output_layer.bias))))
        if length > 1:
            states0 = [core.rnn.zero_state(tf.shape(emb)[0]) for core in self.cores]
        else:
            states0 = [core.rnn.split_state(init) for core, _, _, init, _, _ in tracks]
        return _LoopConstants(length, tracks, states0, emb.dtype)

    def _run_loop(self, loop: _LoopConstants, start: tf.Tensor, choose: Callable,
                  targets=None, use_target=None, return_logits=False, keep=False):
        """`autoregress`'s loop over `loop`'s subsequences, each row reading `start` [B, K]
        as its first input; keep: also the activations (one subsequence only)."""
        restarts = loop.length > 1
        if keep and restarts:
            raise ValueError("only a flat decoder's step loop keeps its activations "
                             "(one subsequence)")
        steps = self.subsequence_steps
        num_steps = loop.length * steps
        if targets is not None:
            targets_ta = _unstack(tf.transpose(targets, [1, 0, 2]), num_steps)
            use_ta = _unstack(tf.transpose(use_target, [1, 0]), num_steps)

        def body(t, previous, states, token_acc, logit_accs, *kept):
            bar = t // steps
            new_previous, new_states, new_logits, new_kept = [], [], [], []
            if targets is not None:
                target_t, use_t = targets_ta.read(t), use_ta.read(t)
            for k, (core, table, cond, init, weights, (out_kernel, out_bias)) in enumerate(
                    loop.tracks):
                state = states[k]
                if restarts:
                    restart = core.rnn.split_state(init.read(bar))
                    fresh = tf.equal(t % steps, 0)
                    state = [(tf.where(fresh, h0, h), tf.where(fresh, c0, c))
                             for (h0, c0), (h, c) in zip(restart, state)]
                    cond_t = cond.read(bar)
                else:
                    cond_t = cond
                rows = tf.gather(table, previous[:, k] + 1)
                if keep:
                    out, state, gates = core.rnn.step(rows + cond_t, state, weights,
                                                      with_gates=True)
                    new_kept.append([(hs.write(t, h), cs.write(t, c), gs.write(t, g))
                                     for (hs, cs, gs), (h, c), g in zip(kept[0][k], state,
                                                                        gates)])
                else:
                    out, state = core.rnn.step(rows + cond_t, state, weights)
                logits = tf.linalg.matmul(out, out_kernel) + out_bias
                token = choose(t, k, logits)
                if targets is not None:
                    token = tf.where(use_t, target_t[:, k], token)
                new_previous.append(token)
                new_states.append(state)
                new_logits.append(logits)
            previous = tf.stack(new_previous, axis=-1)
            token_acc = token_acc.write(t, previous)
            if return_logits:
                logit_accs = [acc.write(t, lg) for acc, lg in zip(logit_accs, new_logits)]
            return (t + 1, previous, new_states, token_acc, logit_accs) + (
                (new_kept,) if keep else ())

        token_acc = tf.TensorArray(tf.int32, size=num_steps)
        logit_accs = [tf.TensorArray(loop.dtype, size=num_steps if return_logits else 0)
                      for _ in self.cores]
        # Only a loop that keeps activations carries their TensorArrays (exports never do).
        kept = [[tuple(tf.TensorArray(loop.dtype, size=num_steps) for _ in range(3))
                 for _ in core.rnn.units] for core in self.cores] if keep else None
        _, _, states, token_acc, logit_accs, *kept = tf.while_loop(
            lambda t, *_: t < num_steps, body,
            (tf.constant(0), start, loop.states0, token_acc, logit_accs) + (
                (kept,) if keep else ()),
            maximum_iterations=num_steps)
        tokens = tf.transpose(token_acc.stack(), [1, 0, 2])
        result = [tokens]
        if return_logits:
            result.append([tf.transpose(acc.stack(), [1, 0, 2]) for acc in logit_accs])
        if keep:
            result.append([[Activations(hs.stack(), h, c, cs.stack(), gs.stack())
                            for (hs, cs, gs), (h, c) in zip(track_kept, track_states)]
                           for track_kept, track_states in zip(kept[0], states)])
        return result[0] if len(result) == 1 else tuple(result)


class _LoopConstants(NamedTuple):
    length: int  # subsequences per row
    tracks: list  # per track: (core, token table, conditioning, initial state, step weights,
    #               (output kernel, output bias))
    states0: list  # each track's LSTM state before the first step
    dtype: tf.DType


def _unstack(tensor: tf.Tensor, size: int) -> tf.TensorArray:
    return tf.TensorArray(tensor.dtype, size=size, clear_after_read=False).unstack(tensor)
