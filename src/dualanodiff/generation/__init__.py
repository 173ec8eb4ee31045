"""Generation: the settings (`GenerateSettings`), the pipeline that denoises both branches of many samples
together, the resumable generate job, and the GEN folder (`GeneratedSet`) it writes."""

from dualanodiff.lazy import lazy_exports

_EXPORTS = {
    "GenerateSettings": "dualanodiff.generation.settings",
    "DualAnoDiffPipeline": "dualanodiff.generation.pipeline",
    "GenerationOutput": "dualanodiff.generation.pipeline",
    "GeneratedSet": "dualanodiff.generation.generated_set",
    "generate": "dualanodiff.generation.job",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = list(_EXPORTS)
