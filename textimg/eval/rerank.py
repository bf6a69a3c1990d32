"""The post's OCR rejection sampling, as pure functions over (prompt, candidate images, OCR).

nostalgebraist-autoresponder `diffusion_helpers.read_and_prune` / `select_best` and
improved-diffusion `SamplingPipeline.sample_with_pruning` (nostalgebraist.md §2): OCR K base
samples, score each with `metrics.trigram` against the prompt, prune, tile the survivors up to the
super-resolution count, upsample, OCR again and keep the argmax. Sampling and upsampling are passed
in as callables, so this module never touches a model and `textimg eval` can wire in any sampler.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from PIL import Image

from textimg.eval import metrics

Read = Callable[[Sequence[Image.Image]], list[str]]
"""`OcrEngine.read`: images -> transcripts."""

Upsample = Callable[[Sequence[Image.Image], str], list[Image.Image]]
"""Super-resolution of low-res images conditioned on the prompt, one output per input."""


@dataclass(frozen=True)
class PruneSettings:
    """The pruning thresholds; defaults are `read_and_prune`'s own (production later used
    keep_only_if_above 0.7, then 0.9, with delete_under -1, i.e. keep all)."""

    keep_only_if_above: float = 0.95
    delete_under: float = 0.1
    continue_if_all_pruned: bool = True


def prune(similarities: Sequence[float], settings: PruneSettings = PruneSettings()) -> list[int]:
    """Indices of the samples that survive, in order.

    If any sample reaches `keep_only_if_above`, only those are kept; otherwise those at or above
    `delete_under`. When nothing survives, all are kept if `continue_if_all_pruned` (the
    pipeline's fallback), else none.
    """
    if not similarities:
        return []
    if max(similarities) >= settings.keep_only_if_above:
        kept = [i for i, s in enumerate(similarities) if s >= settings.keep_only_if_above]
    else:
        kept = [i for i, s in enumerate(similarities) if s >= settings.delete_under]
    if not kept and settings.continue_if_all_pruned:
        return list(range(len(similarities)))
    return kept


def tile(survivors: Sequence[int], count: int) -> list[int]:
    """Survivors repeated in order to fill max(count, len(survivors)) super-resolution slots.

    One good low-res image can thus be upsampled several times (`pipeline.py:L285-291`).
    """
    if not survivors:
        return []
    total = max(count, len(survivors))
    return [survivors[i % len(survivors)] for i in range(total)]


def best_index(similarities: Sequence[float]) -> int:
    """The argmax, first one on ties, as `np.argmax` in `select_best`."""
    return max(range(len(similarities)), key=lambda i: (similarities[i], -i))


@dataclass
class RerankResult:
    """The chosen image and everything needed to audit the choice."""

    image: Image.Image
    base_transcripts: list[str]
    base_similarities: list[float]
    survivors: list[int]
    final_transcripts: list[str]
    final_similarities: list[float]
    chosen: int
    """Index into the final candidates (the upsampled ones, or the base samples without SR)."""


def rerank(
    prompt: str,
    candidates: Sequence[Image.Image],
    read: Read,
    upsample: Upsample | None = None,
    upsample_count: int | None = None,
    settings: PruneSettings = PruneSettings(),
    final_read: Read | None = None,
) -> RerankResult:
    """Steps 2-6 of the post's pipeline over K already-sampled `candidates`.

    Without `upsample` the best surviving base sample is kept. `final_read` lets the last pick use
    another OCR setting (the original re-read at confidence 80 after pruning at 65).
    """
    if not candidates:
        raise ValueError("rerank needs at least one candidate image")
    base_texts = read(candidates)
    base_sims = [metrics.trigram(prompt, text) for text in base_texts]
    survivors = prune(base_sims, settings)
    if not survivors:
        survivors = [best_index(base_sims)]  # nothing left to upsample: keep the least bad
    if upsample is None:
        finals = [candidates[i] for i in survivors]
        final_texts = [base_texts[i] for i in survivors]
        if final_read is not None:
            final_texts = final_read(finals)
    else:
        slots = tile(survivors, upsample_count or len(candidates))
        finals = upsample([candidates[i] for i in slots], prompt)
        final_texts = (final_read or read)(finals)
    final_sims = [metrics.trigram(prompt, text) for text in final_texts]
    chosen = best_index(final_sims)
    return RerankResult(
        finals[chosen], base_texts, base_sims, survivors, final_texts, final_sims, chosen
    )
