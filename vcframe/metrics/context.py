"""What metrics share inside one comparison: the device, the settings and the judge speaker encoder."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vcframe.config import Settings
    from vcframe.discovery import Registry
    from vcframe.metrics.speaker import SpeakerJudge


@dataclass
class MetricContext:
    """Shared resources for the metrics of one comparison (built lazily, once per process).

    Args:
        judge_encoder: the speaker encoder that judges similarity, chosen independently of the systems'
            own encoders (default ``ge2e`` with its pretrained weights).
        judge_options: options of the judge encoder (its config fields).
        device: where the judge runs.
        settings: vcframe settings (component options, disabled plugins); default: load_settings().
        registry: where the judge encoder is looked up; default: installed entry points.
    """

    judge_encoder: str = "ge2e"
    judge_options: dict[str, Any] = field(default_factory=dict)
    device: str = "cpu"
    settings: Settings | None = None
    registry: Registry | None = None
    _judge: SpeakerJudge | None = field(default=None, init=False, repr=False)

    @property
    def judge(self) -> SpeakerJudge:
        """The judge (its encoder is built, and its weights loaded, on first use)."""
        if self._judge is None:
            from vcframe.metrics.speaker import SpeakerJudge

            self._judge = SpeakerJudge(
                self.judge_encoder,
                options=self.judge_options,
                device=self.device,
                settings=self.settings,
                registry=self.registry,
            )
        return self._judge
