"""Pooling, the configurable classification head, and encoder + head as one export-friendly module."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "gelu": nn.GELU, "tanh": nn.Tanh, "silu": nn.SiLU}
NORMS = ("none", "layer", "batch")
POOLINGS = ("mean", "cls")


@dataclass(frozen=True)
class HeadConfig:
    """Head shape: `n_layers` hidden blocks (0 = a single linear layer) then the output layer."""

    n_layers: int = 1
    hidden_size: int = 256
    activation: str = "gelu"
    norm: str = "none"
    dropout: float = 0.1

    def __post_init__(self) -> None:
        if self.n_layers < 0:
            raise ValueError(f"head n_layers must be >= 0, got {self.n_layers}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"head activation must be one of {list(ACTIVATIONS)}, got {self.activation!r}")
        if self.norm not in NORMS:
            raise ValueError(f"head norm must be one of {list(NORMS)}, got {self.norm!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"head dropout must be in [0, 1), got {self.dropout}")
        if self.n_layers and self.hidden_size < 1:
            raise ValueError(f"head hidden_size must be >= 1, got {self.hidden_size}")

    def to_dict(self) -> dict:
        return asdict(self)


class ClassificationHead(nn.Module):
    """dropout -> [Linear -> norm -> activation -> dropout] x n_layers -> Linear(n_labels)."""

    def __init__(self, in_dim: int, n_labels: int, config: HeadConfig = HeadConfig()):
        super().__init__()
        self.config = config
        layers: list[nn.Module] = [nn.Dropout(config.dropout)]
        dim = in_dim
        for _ in range(config.n_layers):
            layers.append(nn.Linear(dim, config.hidden_size))
            if config.norm == "layer":
                layers.append(nn.LayerNorm(config.hidden_size))
            elif config.norm == "batch":
                layers.append(nn.BatchNorm1d(config.hidden_size))
            layers.append(ACTIVATIONS[config.activation]())
            layers.append(nn.Dropout(config.dropout))
            dim = config.hidden_size
        layers.append(nn.Linear(dim, n_labels))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Average of the token vectors where the mask is 1 (no data-dependent control flow)."""
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)


class EmotionClassifier(nn.Module):
    """Encoder + pooling + head. `forward(input_ids, attention_mask) -> logits` (n x labels).

    `aux_head` (optional, training only): a second head on the same pooled vector (e.g. the 28 fine GoEmotions
    labels); in training mode its logits follow the main ones (n x (labels + aux)), in eval mode they are not
    computed. It is removed (set to None) before the model is saved or exported.
    """

    def __init__(self, encoder: nn.Module, head: ClassificationHead, pooling: str = "mean",
                 aux_head: nn.Module | None = None):
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {list(POOLINGS)}, got {pooling!r}")
        self.encoder = encoder
        self.head = head
        self.pooling = pooling
        self.aux_head = aux_head

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        pooled = mean_pool(hidden, attention_mask) if self.pooling == "mean" else hidden[:, 0]
        logits = self.head(pooled)
        if self.aux_head is not None and self.training:
            return torch.cat([logits, self.aux_head(pooled).to(logits.dtype)], dim=1)
        return logits


def encoder_hidden_size(encoder: nn.Module) -> int:
    """The encoder's output width, read from its config."""
    cfg = getattr(encoder, "config", None)
    for name in ("hidden_size", "d_model", "dim"):
        if cfg is not None and getattr(cfg, name, None):
            return int(getattr(cfg, name))
    raise ValueError("cannot tell the encoder's hidden size from its config")
