"""Turn a GenerationRequest into the prompt an LLM sees (synthesis or repair); the wording lives in prompts/."""

from __future__ import annotations

from prompts import RenderedPrompt, load_prompt
from synth_modules.types import Category, GenerationRequest, Sample

# Validator messages can be long tracebacks; the head says what failed and the tail says where.
_MESSAGE_HEAD = 400
_MESSAGE_TAIL = 1600


def op_hint(name: str) -> str:
    """The catalog's one-line hint for an op, or "" when the catalog lacks it (or is not installed)."""
    try:
        import operators

        spec = operators.get(name)
    except (ImportError, KeyError, LookupError, AttributeError):
        return ""
    return str(getattr(spec, "prompt_hint", "") or "").strip()


def describe_operations(sample: Sample) -> str:
    """One line per sampled op, with its role and catalog hint."""
    template = load_prompt("synthesis")
    lines = []
    for role, ops in (
        ("core", sample.core_ops),
        ("compound", sample.compound_ops),
        ("supporting", sample.supporting_ops),
    ):
        for name in ops:
            hint = op_hint(name)
            key = "operation_line" if hint else "operation_line_no_hint"
            lines.append(template.fragment(key, name=name, role=role, hint=hint))
    return "\n".join(lines)


def shorten_message(message: str) -> str:
    message = message.strip()
    if len(message) <= _MESSAGE_HEAD + _MESSAGE_TAIL:
        return message
    return f"{message[:_MESSAGE_HEAD]}\n[... {len(message) - _MESSAGE_HEAD - _MESSAGE_TAIL} characters cut ...]\n{message[-_MESSAGE_TAIL:]}"


def build_prompt(request: GenerationRequest) -> RenderedPrompt:
    """The synthesis prompt for a first attempt, the repair prompt when the request carries a failure."""
    synthesis = load_prompt("synthesis")
    operations = describe_operations(request.sample)
    precision = synthesis.fragment("sizes_and_dtype", dtype=request.dtype or "float32")
    contract = synthesis.fragment("contract") + "\n" + precision
    if request.repair is None:
        return synthesis.render(
            operations=operations, contract=contract, example=synthesis.fragment("example")
        )
    repair = load_prompt("repair")
    context = request.repair
    # An extraction failure hands back the whole answer (prose, maybe broken fences), not a program.
    previous_key = "previous_answer" if context.category == Category.EXTRACTION_FAILURE else "previous_code"
    return repair.render(
        operations=operations,
        contract=contract,
        previous=repair.fragment(previous_key, text=context.previous_source.strip()),
        category=context.category,
        category_hint=repair.hint(context.category),
        message=shorten_message(context.message),
    )
