"""Tacotron with CBHG encoder and post-net, as RTVC's ``synthesizer/models/tacotron.py``.

One model in this file, built from small modules. Module and parameter names are RTVC's, so an RTVC
``synthesizer.pt`` state dict loads with ``strict=True``. Two RTVC behaviours are switchable:

* pre-net dropout: RTVC applies it even in eval mode (``F.dropout(training=True)``); here the dropout
  probability is an argument of every call, so synthesis may use 0.5 (RTVC) or 0 (deterministic).
* padding: RTVC multiplies the attention energies by ``chars != 0`` (pads keep energy 0, still get softmax
  mass) and runs the CBHGs over padding. ``clean=True`` gives pads -inf energy, zeroes padded positions
  before every convolution and packs the GRUs, so an item's result does not depend on its batch.
"""

from __future__ import annotations

from contextlib import nullcontext
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from vcframe.distributed import bernoulli_mask, dropout

if TYPE_CHECKING:
    from vcframe_tacotron.inference import DecoderStep


def _dropout(x: torch.Tensor, p: float) -> torch.Tensor:
    # RTVC: F.dropout(x, p, training=True) whatever the module mode; p = 0 draws no random numbers. Under
    # distributed training the mask is drawn for the global batch and sliced (vcframe.distributed).
    return dropout(x, p)


def length_mask(lengths: torch.Tensor, total: int) -> torch.Tensor:
    """(B,) lengths -> (B, total) bool, True on valid positions."""
    return torch.arange(total, device=lengths.device)[None, :] < lengths[:, None]


class HighwayNetwork(nn.Module):
    """``y = g * relu(W1 x) + (1 - g) * x`` with gate ``g = sigmoid(W2 x)``; W1's bias starts at 0.

    Args:
        size (int): feature size. Shapes: (..., size) -> (..., size).
    """

    def __init__(self, size: int) -> None:
        super().__init__()
        self.W1 = nn.Linear(size, size)
        self.W2 = nn.Linear(size, size)
        self.W1.bias.data.fill_(0.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = torch.sigmoid(self.W2(x))
        return gate * F.relu(self.W1(x)) + (1.0 - gate) * x


class BatchNormConv(nn.Module):
    """Conv1d (no bias, padding kernel//2) -> ReLU (optional) -> BatchNorm1d: RTVC's order.

    Args:
        in_channels (int), out_channels (int), kernel (int), relu (bool, default True).
        Shapes: (B, in_channels, T) -> (B, out_channels, T + 1 - kernel % 2).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel: int, relu: bool = True) -> None:
        super().__init__()
        self.conv = nn.Conv1d(in_channels, out_channels, kernel, stride=1, padding=kernel // 2, bias=False)
        self.bnorm = nn.BatchNorm1d(out_channels)
        self.relu = relu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        if self.relu:
            x = F.relu(x)
        normalized: torch.Tensor = self.bnorm(x)
        return normalized


class CBHG(nn.Module):
    """Conv bank (kernels 1..K), max-pool, two projections, residual, highways, bidirectional GRU.

    Args:
        K (int): largest bank kernel.
        in_channels (int): input channels.
        channels (int): bank and highway width; the BiGRU gives ``channels // 2`` per direction.
        proj_channels (list[int]): the two projection widths; ``proj_channels[1]`` must equal in_channels
            (residual). If it differs from ``channels``, ``pre_highway`` (Linear, no bias) adapts it.
        num_highways (int): highway layers.

    Shapes: x (B, in_channels, T), optional lengths (B,) -> (B, T, channels), x's dtype. With lengths, padded
    frames are zeroed before every convolution and the GRU sees only valid frames (results independent of padding).
    ``compute_dtype`` (default None: x's dtype throughout): the conv bank, projections and highways under
    autocast to this dtype (bfloat16 in mixed-precision training); the residual, the GRU and the output stay in
    x's dtype.
    """

    def __init__(self, K: int, in_channels: int, channels: int, proj_channels: list[int], num_highways: int) -> None:
        super().__init__()
        if proj_channels[-1] != in_channels:
            raise ValueError(
                f"the last projection ({proj_channels[-1]}) must equal in_channels ({in_channels}) for the residual"
            )
        if channels % 2:
            raise ValueError(f"channels ({channels}) must be even for the bidirectional GRU")
        self.bank_kernels = list(range(1, K + 1))
        self.conv1d_bank = nn.ModuleList(BatchNormConv(in_channels, channels, k) for k in self.bank_kernels)
        self.maxpool = nn.MaxPool1d(kernel_size=2, stride=1, padding=1)
        self.conv_project1 = BatchNormConv(K * channels, proj_channels[0], 3)
        self.conv_project2 = BatchNormConv(proj_channels[0], proj_channels[1], 3, relu=False)
        self.highway_mismatch = proj_channels[-1] != channels
        if self.highway_mismatch:
            self.pre_highway = nn.Linear(proj_channels[-1], channels, bias=False)
        self.highways = nn.ModuleList(HighwayNetwork(channels) for _ in range(num_highways))
        self.rnn = nn.GRU(channels, channels // 2, batch_first=True, bidirectional=True)

    def forward(
        self, x: torch.Tensor, lengths: torch.Tensor | None = None, compute_dtype: torch.dtype | None = None
    ) -> torch.Tensor:
        seq_len = x.size(-1)
        mask = None if lengths is None else length_mask(lengths, seq_len)[:, None, :].to(x.dtype)

        def masked(values: torch.Tensor) -> torch.Tensor:
            # 0 / 1 in the values' dtype: a bfloat16 activation stays bfloat16 (float32: the same tensor as before)
            return values if mask is None else values * mask.to(values.dtype)

        residual = x
        precision = nullcontext() if compute_dtype is None else torch.autocast(x.device.type, dtype=compute_dtype)
        with precision:
            x = masked(x)
            bank = torch.cat([conv(x)[:, :, :seq_len] for conv in self.conv1d_bank], dim=1)
            x = self.maxpool(bank)[:, :, :seq_len]
            x = self.conv_project1(masked(x))
            x = self.conv_project2(masked(x))
            x = (x + residual).transpose(1, 2)
            if self.highway_mismatch:
                x = self.pre_highway(x)
            for highway in self.highways:
                x = highway(x)
        x = x.to(residual.dtype)  # the GRU, like the decoder's recurrent steps, in the input's dtype (float32)
        if lengths is None:
            x, _ = self.rnn(x)
            return x
        return self._masked_rnn(x, lengths)

    def _masked_rnn(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """The BiGRU over the first ``lengths`` frames of each item, zeros after: what a packed sequence gives.

        Packing is not used because its CPU backward allocates and zero-fills a gradient the size of the whole
        packed input at every time step (the per-step ``narrow``), which made the post-net GRU most of a
        training step's time. Instead the GRU runs once on a batch of 2B padded items: the items as given
        (their forward direction starts at frame 0 with a zero state) and the same items right-aligned (their
        reverse direction starts at each item's last valid frame with a zero state); the unused half of each
        is discarded. Shapes: x (B, T, channels), lengths (B,) -> (B, T, channels).
        """
        batch, seq_len, channels = x.shape
        hidden = self.rnn.hidden_size
        lengths = lengths.clamp(1, seq_len).to(x.device)
        positions = torch.arange(seq_len, device=x.device)[None, :]
        shift = (seq_len - lengths)[:, None]
        to_right = ((positions - shift) % seq_len)[:, :, None]
        right_aligned = x.gather(1, to_right.expand(-1, -1, channels))
        output, _ = self.rnn(torch.cat([x, right_aligned], dim=0))
        forward_direction = output[:batch, :, :hidden]
        to_left = ((positions + shift) % seq_len)[:, :, None]
        reverse_direction = output[batch:, :, hidden:].gather(1, to_left.expand(-1, -1, hidden))
        valid = length_mask(lengths, seq_len)[:, :, None].to(x.dtype)
        return torch.cat([forward_direction, reverse_direction], dim=2) * valid


class PreNet(nn.Module):
    """Linear -> ReLU -> dropout -> Linear -> ReLU -> dropout; the dropout ``p`` is given per call.

    Args:
        in_dims (int), fc1_dims (int, default 256), fc2_dims (int, default 128).
        Shapes: (..., in_dims) -> (..., fc2_dims).
    """

    def __init__(self, in_dims: int, fc1_dims: int = 256, fc2_dims: int = 128) -> None:
        super().__init__()
        self.fc1 = nn.Linear(in_dims, fc1_dims)
        self.fc2 = nn.Linear(fc1_dims, fc2_dims)

    def forward(self, x: torch.Tensor, p: float) -> torch.Tensor:
        x = _dropout(F.relu(self.fc1(x)), p)
        return _dropout(F.relu(self.fc2(x)), p)


class Encoder(nn.Module):
    """Character embedding -> pre-net -> CBHG; the speaker embedding is concatenated to every position.

    Args:
        embed_dims (int), num_chars (int), encoder_dims (int), K (int), num_highways (int).
        Shapes: chars (B, L) int64, speaker_embedding (B, S) -> (B, L, encoder_dims + S). ``cbhg_dtype``: the
        CBHG's ``compute_dtype``.
    """

    def __init__(self, embed_dims: int, num_chars: int, encoder_dims: int, K: int, num_highways: int) -> None:
        super().__init__()
        self.embedding = nn.Embedding(num_chars, embed_dims)
        self.pre_net = PreNet(embed_dims, fc1_dims=encoder_dims, fc2_dims=encoder_dims)
        self.cbhg = CBHG(K, encoder_dims, encoder_dims, [encoder_dims, encoder_dims], num_highways)

    def forward(
        self,
        chars: torch.Tensor,
        speaker_embedding: torch.Tensor,
        p: float,
        lengths: torch.Tensor | None = None,
        cbhg_dtype: torch.dtype | None = None,
    ) -> torch.Tensor:
        x = self.pre_net(self.embedding(chars), p).transpose(1, 2)
        x = self.cbhg(x, lengths, cbhg_dtype)
        speaker = speaker_embedding[:, None, :].expand(-1, x.size(1), -1)
        return torch.cat((x, speaker), dim=2)


class LSA(nn.Module):
    """Location-sensitive attention over the cumulative attention weights (RTVC: cumulative only).

    Args:
        attn_dim (int), kernel_size (int, default 31), filters (int, default 32).
        Shapes: encoder_seq_proj (B, L, attn_dim), query (B, attn_dim), cumulative (B, L), mask (B, L) bool
        -> weights (B, L).
    """

    def __init__(self, attn_dim: int, kernel_size: int = 31, filters: int = 32) -> None:
        super().__init__()
        self.conv = nn.Conv1d(1, filters, padding=(kernel_size - 1) // 2, kernel_size=kernel_size, bias=True)
        self.L = nn.Linear(filters, attn_dim, bias=False)
        self.W = nn.Linear(attn_dim, attn_dim, bias=True)
        self.v = nn.Linear(attn_dim, 1, bias=False)

    def forward(
        self,
        encoder_seq_proj: torch.Tensor,
        query: torch.Tensor,
        cumulative: torch.Tensor,
        mask: torch.Tensor,
        clean: bool,
    ) -> torch.Tensor:
        processed_query = self.W(query).unsqueeze(1)
        processed_loc = self.L(self.conv(cumulative.unsqueeze(1)).transpose(1, 2))
        energy = self.v(torch.tanh(processed_query + encoder_seq_proj + processed_loc)).squeeze(-1)
        energy = energy.masked_fill(~mask, float("-inf")) if clean else energy * mask.float()
        return F.softmax(energy, dim=1)


class Decoder(nn.Module):
    """Pre-net, attention GRU, LSA, two residual LSTM cells, mel and stop projections.

    Args:
        n_mels (int), encoder_dims (int), decoder_dims (int), lstm_dims (int), speaker_embedding_size (int),
        max_r (int, default 20): the mel projection gives ``n_mels * max_r`` values, viewed (B, n_mels, max_r)
        (mel-major, RTVC's layout); the first ``r`` (buffer, int32) frames are used.
    """

    r: torch.Tensor  # buffer registered in __init__ (declared for the type checker)

    def __init__(
        self,
        n_mels: int,
        encoder_dims: int,
        decoder_dims: int,
        lstm_dims: int,
        speaker_embedding_size: int,
        max_r: int = 20,
    ) -> None:
        super().__init__()
        self.register_buffer("r", torch.tensor(1, dtype=torch.int))
        self.n_mels = n_mels
        self.max_r = max_r
        memory_dims = encoder_dims + speaker_embedding_size
        prenet_dims = decoder_dims * 2
        self.prenet = PreNet(n_mels, fc1_dims=prenet_dims, fc2_dims=prenet_dims)
        self.attn_net = LSA(decoder_dims)
        self.attn_rnn = nn.GRUCell(memory_dims + prenet_dims, decoder_dims)
        self.rnn_input = nn.Linear(memory_dims + decoder_dims, lstm_dims)
        self.res_rnn1 = nn.LSTMCell(lstm_dims, lstm_dims)
        self.res_rnn2 = nn.LSTMCell(lstm_dims, lstm_dims)
        self.mel_proj = nn.Linear(lstm_dims, n_mels * max_r, bias=False)
        self.stop_proj = nn.Linear(memory_dims + lstm_dims, 1)

    @staticmethod
    def zoneout(previous: torch.Tensor, current: torch.Tensor, p: float = 0.1) -> torch.Tensor:
        mask = bernoulli_mask(previous.size(), p, device=previous.device)
        return previous * mask + current * (1 - mask)

    def initial_state(self, encoder_seq: torch.Tensor) -> dict[str, torch.Tensor]:
        batch, length, memory_dims = encoder_seq.shape
        lstm_dims = self.res_rnn1.hidden_size
        zeros = encoder_seq.new_zeros
        return {
            "attn_hidden": zeros(batch, self.attn_rnn.hidden_size),
            "rnn1_hidden": zeros(batch, lstm_dims),
            "rnn1_cell": zeros(batch, lstm_dims),
            "rnn2_hidden": zeros(batch, lstm_dims),
            "rnn2_cell": zeros(batch, lstm_dims),
            "context": zeros(batch, memory_dims),
            "cumulative": zeros(batch, length),
        }

    def forward(
        self,
        encoder_seq: torch.Tensor,
        encoder_seq_proj: torch.Tensor,
        prenet_in: torch.Tensor,
        state: dict[str, torch.Tensor],
        mask: torch.Tensor,
        p: float,
        clean: bool,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """One step -> (mels (B, n_mels, r), attention (B, L), stop probability (B, 1), new state)."""
        batch = encoder_seq.size(0)
        prenet_out = self.prenet(prenet_in, p)
        attn_hidden, scores, context = self._attend(
            encoder_seq, encoder_seq_proj, prenet_out, state["attn_hidden"], state["context"], state["cumulative"],
            mask, clean,
        )  # fmt: skip
        x = self.rnn_input(torch.cat([context, attn_hidden], dim=1))
        rnn1_next, rnn1_cell = self.res_rnn1(x, (state["rnn1_hidden"], state["rnn1_cell"]))
        rnn1_hidden = self.zoneout(state["rnn1_hidden"], rnn1_next) if self.training else rnn1_next
        x = x + rnn1_hidden
        rnn2_next, rnn2_cell = self.res_rnn2(x, (state["rnn2_hidden"], state["rnn2_cell"]))
        rnn2_hidden = self.zoneout(state["rnn2_hidden"], rnn2_next) if self.training else rnn2_next
        x = x + rnn2_hidden
        mels = self.mel_proj(x).view(batch, self.n_mels, self.max_r)[:, :, : int(self.r)]
        stop = torch.sigmoid(self.stop_proj(torch.cat((x, context), dim=1)))
        new_state = {
            "attn_hidden": attn_hidden,
            "rnn1_hidden": rnn1_hidden,
            "rnn1_cell": rnn1_cell,
            "rnn2_hidden": rnn2_hidden,
            "rnn2_cell": rnn2_cell,
            "context": context,
            "cumulative": state["cumulative"] + scores,
        }
        return mels, scores, stop, new_state

    def _attend(
        self,
        encoder_seq: torch.Tensor,
        encoder_seq_proj: torch.Tensor,
        prenet_out: torch.Tensor,
        attn_hidden: torch.Tensor,
        context: torch.Tensor,
        cumulative: torch.Tensor,
        mask: torch.Tensor,
        clean: bool,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One attention step: the attention GRU on (previous context, pre-net output), LSA scores over the
        encoder memory, and the new context -> (attn_hidden (B, decoder_dims), scores (B, L), context (B, memory))."""
        attn_hidden = self.attn_rnn(torch.cat([context, prenet_out], dim=-1), attn_hidden)
        scores = self.attn_net(encoder_seq_proj, attn_hidden, cumulative, mask, clean)
        context = (scores.unsqueeze(1) @ encoder_seq).squeeze(1)
        return attn_hidden, scores, context

    def teacher_forced(
        self,
        encoder_seq: torch.Tensor,
        encoder_seq_proj: torch.Tensor,
        prenet_in: torch.Tensor,
        mask: torch.Tensor,
        p: float,
        clean: bool,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """All decoder steps with known inputs (teacher forcing): the same function as calling :meth:`forward`
        once per step, computed faster for training.

        Under teacher forcing only the attention (GRU, LSA, context) is recurrent in a way that involves every
        layer; the pre-net, the LSTMs' input projections, ``rnn_input``, ``mel_proj`` and ``stop_proj`` see
        inputs known once the attention has run, so they are computed for all steps in one matrix product each
        (and their weight gradients in one product each, instead of one per step). Only the attention loop and
        the LSTMs' hidden-to-hidden products stay per step. The random masks (pre-net dropout, zoneout) are drawn
        in another order than the per-step loop draws them, so a training run's random stream differs from
        RTVC's; with ``p = 0`` in eval mode the results equal the per-step loop's (golden tests).

        Shapes: prenet_in (B, T, n_mels), the previous frame of each of the T steps (zeros for the first)
        -> mels (B, n_mels, T * r), attention (B, T, L), stop probability (B, T).
        """
        batch, steps, _ = prenet_in.shape
        r = int(self.r)
        state = self.initial_state(encoder_seq)
        prenet_out = self.prenet(prenet_in, p).unbind(1)
        attn_hidden, context, cumulative = state["attn_hidden"], state["context"], state["cumulative"]
        hiddens, contexts, attention = [], [], []
        for step in range(steps):
            attn_hidden, scores, context = self._attend(
                encoder_seq, encoder_seq_proj, prenet_out[step], attn_hidden, context, cumulative, mask, clean
            )
            cumulative = cumulative + scores
            hiddens.append(attn_hidden)
            contexts.append(context)
            attention.append(scores)
        context_seq = torch.stack(contexts, dim=1)
        x = self.rnn_input(torch.cat([context_seq, torch.stack(hiddens, dim=1)], dim=2))
        x = x + self._lstm_sequence(self.res_rnn1, x)
        x = x + self._lstm_sequence(self.res_rnn2, x)
        # only the first r of the max_r frames per mel band are used: project onto those rows alone
        weight = self.mel_proj.weight.view(self.n_mels, self.max_r, -1)[:, :r].reshape(self.n_mels * r, -1)
        mels = F.linear(x, weight).view(batch, steps, self.n_mels, r).permute(0, 2, 1, 3)
        stop = torch.sigmoid(self.stop_proj(torch.cat((x, context_seq), dim=2))).squeeze(2)
        return mels.reshape(batch, self.n_mels, steps * r), torch.stack(attention, dim=1), stop

    def _lstm_sequence(self, cell: nn.LSTMCell, inputs: torch.Tensor) -> torch.Tensor:
        """``cell`` over the steps of ``inputs`` (B, T, in) from a zero state, zoneout on the hidden state in
        training mode (as :meth:`forward`) -> hidden states (B, T, hidden). The input projection of all steps
        is one product; PyTorch's LSTMCell gate order (input, forget, cell, output)."""
        gates_in = F.linear(inputs, cell.weight_ih, cell.bias_ih).unbind(1)
        hidden = inputs.new_zeros(inputs.size(0), cell.hidden_size)
        cell_state = hidden
        outputs = []
        for gates_step in gates_in:
            gates = gates_step + F.linear(hidden, cell.weight_hh, cell.bias_hh)
            input_gate, forget_gate, cell_gate, output_gate = gates.chunk(4, dim=1)
            cell_state = torch.sigmoid(forget_gate) * cell_state + torch.sigmoid(input_gate) * torch.tanh(cell_gate)
            hidden_next = torch.sigmoid(output_gate) * torch.tanh(cell_state)
            hidden = self.zoneout(hidden, hidden_next) if self.training else hidden_next
            outputs.append(hidden)
        return torch.stack(outputs, dim=1)


class Tacotron(nn.Module):
    """RTVC's Tacotron (SV2TTS): text + speaker embedding -> mel spectrogram.

    Args:
        embed_dims (int, default 512): character embedding size.
        num_chars (int, default 66): symbol table size.
        encoder_dims (int, default 256): encoder pre-net and CBHG width.
        decoder_dims (int, default 128): attention RNN / attention width (decoder pre-net is twice it).
        n_mels (int, default 80): mel bands.
        postnet_dims (int, default 512): post-net CBHG width.
        encoder_K (int, default 5), postnet_K (int, default 5): conv-bank sizes.
        lstm_dims (int, default 1024): residual decoder LSTM width.
        num_highways (int, default 4): highway layers per CBHG.
        speaker_embedding_size (int, default 256).
        max_r (int, default 20): largest reduction factor the mel projection supports.
        stop_threshold (float, default -3.4): stored buffer (RTVC keeps the trim level there; unused here).

    Shapes: chars (B, L) int64 (0 = pad), mels (B, n_mels, T), speaker_embedding (B, speaker_embedding_size).
    """

    # buffers registered in __init__ (declared for the type checker)
    step: torch.Tensor
    stop_threshold: torch.Tensor

    def __init__(
        self,
        embed_dims: int = 512,
        num_chars: int = 66,
        encoder_dims: int = 256,
        decoder_dims: int = 128,
        n_mels: int = 80,
        postnet_dims: int = 512,
        encoder_K: int = 5,
        postnet_K: int = 5,
        lstm_dims: int = 1024,
        num_highways: int = 4,
        speaker_embedding_size: int = 256,
        max_r: int = 20,
        stop_threshold: float = -3.4,
    ) -> None:
        super().__init__()
        self.n_mels = n_mels
        self.speaker_embedding_size = speaker_embedding_size
        self.encoder = Encoder(embed_dims, num_chars, encoder_dims, encoder_K, num_highways)
        self.encoder_proj = nn.Linear(encoder_dims + speaker_embedding_size, decoder_dims, bias=False)
        self.decoder = Decoder(n_mels, encoder_dims, decoder_dims, lstm_dims, speaker_embedding_size, max_r)
        self.postnet = CBHG(postnet_K, n_mels, postnet_dims, [postnet_dims, n_mels], num_highways)
        self.post_proj = nn.Linear(postnet_dims, n_mels, bias=False)
        self.init_model()
        self.register_buffer("step", torch.zeros(1, dtype=torch.long))
        self.register_buffer("stop_threshold", torch.tensor(stop_threshold, dtype=torch.float32))

    def init_model(self) -> None:
        """RTVC's init: xavier-uniform on every parameter with more than one dimension."""
        for parameter in self.parameters():
            if parameter.dim() > 1:
                nn.init.xavier_uniform_(parameter)

    @property
    def r(self) -> int:
        return int(self.decoder.r)

    @r.setter
    def r(self, value: int) -> None:
        if not 1 <= value <= self.decoder.max_r:
            raise ValueError(f"r ({value}) must lie in [1, max_r={self.decoder.max_r}]")
        self.decoder.r.fill_(value)

    def project_postnet(self, postnet: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
        """The post-net's features (B, T, postnet_dims) -> mel (B, n_mels, T) through ``post_proj``, or through
        ``weight`` (n_mels, postnet_dims) in its place (a speaker's output adapter) without changing the module."""
        projected = self.post_proj(postnet) if weight is None else F.linear(postnet, weight)
        return projected.transpose(1, 2)

    def encode(
        self,
        chars: torch.Tensor,
        speaker_embedding: torch.Tensor,
        p: float,
        text_lengths: torch.Tensor | None = None,
        cbhg_dtype: torch.dtype | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """-> encoder memory (B, L, encoder_dims + S) and its projection (B, L, decoder_dims)."""
        encoder_seq = self.encoder(chars, speaker_embedding, p, text_lengths, cbhg_dtype)
        return encoder_seq, self.encoder_proj(encoder_seq)

    def forward(
        self,
        chars: torch.Tensor,
        mels: torch.Tensor,
        speaker_embedding: torch.Tensor,
        *,
        p: float = 0.5,
        text_lengths: torch.Tensor | None = None,
        mel_lengths: torch.Tensor | None = None,
        silence_value: float | None = None,
        cbhg_dtype: torch.dtype | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Teacher forcing. With ``text_lengths`` the clean masking is used (-inf pads, masked CBHGs).

        With ``mel_lengths`` the post-net sees only each item's frames and gives 0 after them; ``silence_value``
        (with ``mel_lengths``) puts that value there instead, as ``generate`` does after an item's end, so a
        loss over the padded batch counts no error at those frames (their value has no gradient either way).

        ``cbhg_dtype`` (default None: float32 throughout): the encoder's and post-net's CBHGs run their
        convolutions and highways under autocast to this dtype (``fit --precision bf16``); everything else, the
        decoder included, and every output stay float32.

        Returns mel_decoder (B, n_mels, T'), mel_postnet (B, n_mels, T'), attention (B, T'/r, L),
        stop (B, T') with ``T' = r * ceil(T / r)``. Increments the ``step`` buffer (as RTVC).
        """
        self.step += 1
        batch, _, steps = mels.shape
        clean = text_lengths is not None
        mask = length_mask(text_lengths, chars.size(1)) if text_lengths is not None else chars != 0
        encoder_seq, encoder_seq_proj = self.encode(chars, speaker_embedding, p, text_lengths, cbhg_dtype)
        r = self.r
        # step t (every r-th frame) reads the frame before it; the first step reads a zero "go" frame
        previous = mels[:, :, r - 1 : steps - 1 : r].transpose(1, 2)
        prenet_in = torch.cat([mels.new_zeros(batch, 1, self.n_mels), previous], dim=1)
        mel_decoder, attention, stop = self.decoder.teacher_forced(
            encoder_seq, encoder_seq_proj, prenet_in, mask, p, clean
        )
        postnet_lengths = None if mel_lengths is None else mel_lengths.clamp_max(mel_decoder.size(2))
        mel_postnet = self.project_postnet(self.postnet(mel_decoder, postnet_lengths, cbhg_dtype))
        if postnet_lengths is not None and silence_value is not None:
            valid = length_mask(postnet_lengths, mel_postnet.size(2))[:, None, :]
            mel_postnet = mel_postnet.masked_fill(~valid, silence_value)
        return mel_decoder, mel_postnet, attention, stop.repeat_interleave(r, dim=1)

    @torch.no_grad()
    def generate(
        self,
        chars: torch.Tensor,
        speaker_embedding: torch.Tensor,
        *,
        steps: int = 2000,
        p: float = 0.5,
        text_lengths: torch.Tensor | None = None,
        stop_threshold: float = 0.5,
        min_frames: int = 10,
        silence_value: float = -4.0,
        step: DecoderStep | None = None,
        post_proj_weight: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Free-running synthesis (eval mode; the module's train/eval mode is restored afterwards).

        ``step``: a :class:`~vcframe_tacotron.inference.DecoderStep` built from this network's decoder at its
        current ``r`` runs the decoder loop (weights laid out once, float32 or bfloat16); None runs
        :meth:`Decoder.forward` (RTVC's arithmetic).

        ``post_proj_weight`` (n_mels, postnet_dims), default None: used in place of ``post_proj``'s weight for this
        call only (:meth:`project_postnet`; a speaker's output adapter); the module is not changed.

        RTVC mode (``text_lengths`` None): pads masked multiplicatively, the loop stops when every stop
        probability exceeds ``stop_threshold`` at one step with ``t > min_frames``; every item gets the full
        length. Clean mode (``text_lengths`` given): -inf pad mask, masked CBHGs, and each item stops at its own
        first firing step; its frames after that are set to ``silence_value`` and the post-net sees only its
        own frames, so the result equals synthesizing the item alone.

        Returns mel_decoder (B, n_mels, T), mel_postnet (B, n_mels, T), attention (B, T/r, L), lengths (B,).
        """
        was_training = self.training
        self.eval()
        try:
            batch = chars.size(0)
            clean = text_lengths is not None
            mask = length_mask(text_lengths, chars.size(1)) if text_lengths is not None else chars != 0
            encoder_seq, encoder_seq_proj = self.encode(chars, speaker_embedding, p, text_lengths)
            state = self.decoder.initial_state(encoder_seq)
            prenet_in = encoder_seq.new_zeros(batch, self.n_mels)
            r = self.r
            if step is not None and step.r != r:
                raise ValueError(f"the decoder step was built for r={step.r}, the network has r={r}")
            memory = None if step is None else step.prepare(encoder_seq, encoder_seq_proj, mask, clean)
            lengths = torch.full((batch,), -1, dtype=torch.long, device=chars.device)
            mel_outputs, attn_scores = [], []
            for t in range(0, steps, r):
                if step is None or memory is None:
                    frames, scores, stop, state = self.decoder(
                        encoder_seq, encoder_seq_proj, prenet_in, state, mask, p, clean
                    )
                else:
                    frames, scores, stop, state = step(memory, prenet_in, state, p)
                mel_outputs.append(frames)
                attn_scores.append(scores.unsqueeze(1))
                prenet_in = frames[:, :, -1]
                fired = stop[:, 0] > stop_threshold
                if clean:
                    newly = fired & (lengths < 0) & (t > min_frames)
                    lengths[newly] = t + r
                    if bool((lengths >= 0).all()):
                        break
                elif bool(fired.all()) and t > min_frames:
                    break
            mel_decoder = torch.cat(mel_outputs, dim=2)
            total = mel_decoder.size(2)
            lengths[lengths < 0] = total
            valid = length_mask(lengths, total)[:, None, :]
            if clean:
                mel_decoder = mel_decoder.masked_fill(~valid, silence_value)
            postnet = self.postnet(mel_decoder, lengths if clean else None)
            mel_postnet = self.project_postnet(postnet, post_proj_weight)
            if clean:
                mel_postnet = mel_postnet.masked_fill(~valid, silence_value)
            return mel_decoder, mel_postnet, torch.cat(attn_scores, 1), lengths
        finally:
            self.train(was_training)
