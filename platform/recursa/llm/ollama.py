"""An Ollama Modelfile for a GGUF export: the prompt format as a Go template, stops, hosting profile.

Ollama renders prompts with its own Go template, not the model's jinja chat template, so the
Modelfile's TEMPLATE must rebuild what recursa's serving builds (`recursa.llm.tool_calls.render_prompt`):
the model's turns, the offered functions in the system message, earlier calls in
``<tool_call>[...]</tool_call>``, tool results as user turns. `turn_format` reads the model's turn
layout off `render_prompt` itself (a prefix naming the role, the content, a closing suffix; an
optional default system turn) and accepts it only if that layout reproduces `render_prompt` on
probe chats; other templates (ones with their own tools section, or per-role layouts) are refused.

Two differences remain that Ollama decides: the function schemas and call arguments are written
by Ollama's ``json`` (compact; its own key order), where recursa writes schemas compact in
schema order and call arguments with ``json.dumps`` spacing.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from recursa.core.config import ConfigError
from recursa.core.hardware import Hardware, detect_hardware
from recursa.llm.tool_calls import (
    CLOSE,
    INSTRUCTIONS,
    OFFER,
    OPEN,
    format_tool_calls,
    render_prompt,
    tools_system_message,
)
from recursa.tools.schema import FunctionCall, FunctionSpec, ParamSpec

MODELFILE, HOSTING = "Modelfile", "hosting.json"


@dataclass(frozen=True)
class OllamaHostingProfile:
    """How to run the model on some hardware. num_ctx and num_thread are Modelfile PARAMETERs;
    num_parallel and flash_attention are settings of the Ollama server (OLLAMA_NUM_PARALLEL,
    OLLAMA_FLASH_ATTENTION), so they go in hosting.json and the Modelfile's comments."""

    num_parallel: int
    num_ctx: int
    num_thread: int
    flash_attention: bool


def hosting_profile(hardware: Hardware, context_length: int) -> OllamaHostingProfile:
    """Above 4 cores two are left to the system (16 cores: 14 threads); smaller machines use every
    core. One request at a time per 4 cores, up to 4 (each parallel request holds its own context);
    a 4096-token context from 16 GB (2048 below), never past the model's; flash attention on GPUs."""
    return OllamaHostingProfile(
        num_parallel=4 if hardware.gpus else max(1, min(4, hardware.cpus // 4)),
        num_ctx=min(context_length, 4096 if hardware.memory_gb >= 16 else 2048),
        num_thread=hardware.cpus - 2 if hardware.cpus > 4 else hardware.cpus,
        flash_attention=hardware.gpus > 0,
    )


@dataclass(frozen=True)
class TurnFormat:
    """A chat layout where every turn is ``before + role + after + content + end``."""

    before: str
    after: str
    end: str
    generation: str  # what follows the last turn: the assistant's opening
    default_system: str | None  # the system text a chat without one gets

    def head(self, role: str) -> str:
        return f"{self.before}{role}{self.after}"


SYSTEM, USER, ANSWER, LATER = "SYSTEM-PROBE", "USER-PROBE", "ANSWER-PROBE", "LATER-PROBE"
_PROBE_FUNCTION = FunctionSpec(name="probe_tool", description="Probe.",
                               parameters=[ParamSpec(name="n", type="integer", description="A number.")])


def turn_format(tokenizer) -> TurnFormat:
    """The turn layout of the model's prompts; a ConfigError when they have another shape."""
    with_system = render_prompt(tokenizer, [{"role": "system", "content": SYSTEM}, {"role": "user", "content": USER}], [])
    head_system, _, rest = with_system.partition(SYSTEM)
    between, _, closing = rest.partition(USER)
    before, found, after = head_system.rpartition("system")
    end = between.removesuffix(f"{before}user{after}")
    if not found or end == between or not closing.startswith(end):
        raise _unsupported(tokenizer)
    alone = render_prompt(tokenizer, [{"role": "user", "content": USER}], [])
    default = alone.partition(f"{before}user{after}{USER}")[0]
    shape = TurnFormat(before, after, end, closing.removeprefix(end), None)
    if default:
        default_text = default.removeprefix(shape.head("system")).removesuffix(end)
        shape = TurnFormat(before, after, end, shape.generation, default_text)
    for messages, functions in probe_chats():
        if render_turns(shape, messages, functions) != render_prompt(tokenizer, messages, functions):
            raise _unsupported(tokenizer)
    return shape


def probe_chats() -> list[tuple[list[dict], list[FunctionSpec]]]:
    """Chats (with and without a system message, functions, earlier calls and tool results) a turn
    layout must render as `render_prompt` does."""
    call = {"function": {"name": "probe_tool", "arguments": {}}}
    return [
        ([{"role": "user", "content": USER}], []),
        ([{"role": "system", "content": SYSTEM}, {"role": "user", "content": USER}], []),
        ([{"role": "user", "content": USER}, {"role": "assistant", "content": ANSWER},
          {"role": "user", "content": LATER}], []),
        ([{"role": "user", "content": USER}], [_PROBE_FUNCTION]),
        ([{"role": "system", "content": SYSTEM}, {"role": "user", "content": USER},
          {"role": "assistant", "content": "", "tool_calls": [call]}, {"role": "tool", "content": ANSWER}],
         [_PROBE_FUNCTION]),
    ]


def render_turns(shape: TurnFormat, messages: list[dict], functions: list[FunctionSpec]) -> str:
    """What the Go template of `shape` renders, written in Python: the reference the template is
    checked against (and, through `turn_format`, checked against `render_prompt`)."""
    system = "\n\n".join(m["content"] for m in messages if m["role"] == "system") or None
    if functions:
        system = tools_system_message(functions, system)
    elif system is None:
        system = shape.default_system
    text = "" if system is None else shape.head("system") + system + shape.end
    for message in messages:
        role, content = message["role"], message.get("content") or ""
        if role == "assistant" and message.get("tool_calls"):
            content = format_tool_calls([FunctionCall(name=c["function"]["name"], arguments=c["function"]["arguments"])
                                         for c in message["tool_calls"]])
        elif role == "tool":
            role, content = "user", f"Function result: {content}"
        if role != "system":
            text += shape.head(role) + content + shape.end
    return text + shape.generation


def go_template(shape: TurnFormat) -> str:
    """The Ollama TEMPLATE of a turn layout (Go text/template over .System, .Tools, .Messages).

    Earlier calls are written as recursa's format writes them (`format_tool_calls`), with the
    arguments through Ollama's ``json``."""
    head = {role: _literal(shape.head(role)) for role in ("system", "user", "assistant")}
    end, offer, instructions = _literal(shape.end), _literal(OFFER), _literal(INSTRUCTIONS)
    default = "" if shape.default_system is None else \
        "{{ else }}" + head["system"] + _literal(shape.default_system) + end
    calls = (f'{_literal(OPEN)}[{{{{ range $i, $c := .ToolCalls }}}}{{{{ if $i }}}}, {{{{ end }}}}'
             '{"name": "{{ $c.Function.Name }}", "arguments": {{ json $c.Function.Arguments }}}'
             f'{{{{ end }}}}]{_literal(CLOSE)}')
    return (
        "{{ if or .System .Tools }}" + head["system"]
        + "{{ if .System }}{{ .System }}{{ if .Tools }}\n\n{{ end }}{{ end }}"
        + "{{ if .Tools }}" + offer + "\n{{ range .Tools }}{{ json .Function }}\n{{ end }}" + instructions + "{{ end }}"
        + end + default + "{{ end }}"
        + "{{ range .Messages }}"
        + '{{ if eq .Role "user" }}' + head["user"] + "{{ .Content }}" + end
        + '{{ else if eq .Role "assistant" }}' + head["assistant"]
        + "{{ if .ToolCalls }}" + calls + "{{ else }}{{ .Content }}{{ end }}" + end
        + '{{ else if eq .Role "tool" }}' + head["user"] + "Function result: {{ .Content }}" + end
        + "{{ end }}{{ end }}" + _literal(shape.generation)
    )


def write_modelfile(out_dir: str | Path, tokenizer, config: dict, hardware: Hardware | None = None) -> dict:
    """Write ``Modelfile`` (next to ``model.gguf``) and ``hosting.json``; what they hold, for the report."""
    out_dir = Path(out_dir)
    shape = turn_format(tokenizer)
    profile = hosting_profile(hardware or detect_hardware(), config["max_position_embeddings"])
    # The end-of-turn token, and EOS; a layout whose turns end without a token stops at the next user turn.
    next_user = (shape.end + shape.head("user")).rstrip() if not shape.end.strip() else None
    stops = sorted({s for s in (shape.end.strip(), tokenizer.eos_token, next_user) if s})
    lines = [
        "# Exported by recursa (recursa export llm --format ollama). Create it with:",
        f"#   OLLAMA_NUM_PARALLEL={profile.num_parallel} OLLAMA_FLASH_ATTENTION={int(profile.flash_attention)} ollama serve",
        "#   ollama create NAME -f Modelfile",
        "FROM ./model.gguf",
        f'TEMPLATE """{go_template(shape)}"""',
        *(f"PARAMETER stop {json.dumps(stop)}" for stop in stops),
        f"PARAMETER num_ctx {profile.num_ctx}",
        f"PARAMETER num_thread {profile.num_thread}",
    ]
    (out_dir / MODELFILE).write_text("\n".join(lines) + "\n")
    (out_dir / HOSTING).write_text(json.dumps(asdict(profile), indent=2) + "\n")
    return {"modelfile": MODELFILE, "stop": stops, "hosting": asdict(profile)}


def _literal(text: str) -> str:
    """Text placed in the template as it is; Go would read ``{{`` as an action and the Modelfile
    ends the template at triple quotes."""
    if "{{" in text or '"""' in text:
        raise ConfigError(f"chat template: {text!r} cannot be written literally in an Ollama template")
    return text


def _unsupported(tokenizer) -> ConfigError:
    kind = "its chat template" if getattr(tokenizer, "chat_template", None) else "its prompt"
    return ConfigError(f"chat template: {kind} is not a turn layout an Ollama TEMPLATE can reproduce here "
                       "(supported: role-prefixed turns like ChatML, or no template)")
