"""vcframe: voice cloning from swappable plugins (speaker encoder, synthesizer, vocoder).

Importing ``vcframe`` is cheap: specs and errors load eagerly, everything that needs torch (typed tensors,
interfaces, the pipeline) loads on first attribute access.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING

from vcframe._lazy import lazy_attributes
from vcframe.errors import (
    AudioInputError,
    CheckpointError,
    ConfigError,
    IncompatibleComponentsError,
    InputError,
    OutputError,
    PluginError,
    VcframeError,
)
from vcframe.hookspecs import hookimpl
from vcframe.specs import (
    API_VERSION,
    GE2E_RTVC_EMBEDDING,
    HIFIGAN_MEL,
    RTVC_ENCODER_MEL,
    RTVC_SYNTHESIZER_MEL,
    AudioSpec,
    ComponentSpec,
    EmbeddingSpec,
    MelSpec,
    TextSpec,
)

try:
    __version__ = version("vcframe-core")
except PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0.0.0"

_LAZY = {
    "Waveform": "vcframe.types",
    "Mel": "vcframe.types",
    "SpeakerEmbedding": "vcframe.types",
    "SpeakerEncoder": "vcframe.interfaces",
    "Synthesizer": "vcframe.interfaces",
    "Vocoder": "vcframe.interfaces",
    "StreamingVocoder": "vcframe.interfaces",
    "BaseSpeakerEncoder": "vcframe.interfaces",
    "BaseSynthesizer": "vcframe.interfaces",
    "BaseVocoder": "vcframe.interfaces",
    "Pipeline": "vcframe.pipeline",
    "load_audio": "vcframe.audio",
    "save_audio": "vcframe.audio",
}

if TYPE_CHECKING:
    from vcframe.audio import load_audio, save_audio
    from vcframe.interfaces import (
        BaseSpeakerEncoder,
        BaseSynthesizer,
        BaseVocoder,
        SpeakerEncoder,
        StreamingVocoder,
        Synthesizer,
        Vocoder,
    )
    from vcframe.pipeline import Pipeline
    from vcframe.types import Mel, SpeakerEmbedding, Waveform


__getattr__ = lazy_attributes(__name__, _LAZY)


__all__ = [
    "API_VERSION",
    "GE2E_RTVC_EMBEDDING",
    "HIFIGAN_MEL",
    "RTVC_ENCODER_MEL",
    "RTVC_SYNTHESIZER_MEL",
    "AudioInputError",
    "AudioSpec",
    "BaseSpeakerEncoder",
    "BaseSynthesizer",
    "BaseVocoder",
    "CheckpointError",
    "ComponentSpec",
    "ConfigError",
    "EmbeddingSpec",
    "IncompatibleComponentsError",
    "InputError",
    "Mel",
    "MelSpec",
    "OutputError",
    "Pipeline",
    "PluginError",
    "SpeakerEmbedding",
    "SpeakerEncoder",
    "StreamingVocoder",
    "Synthesizer",
    "TextSpec",
    "VcframeError",
    "Vocoder",
    "Waveform",
    "__version__",
    "hookimpl",
    "load_audio",
    "save_audio",
]
