"""The Jinja2 sandbox every automatic text is rendered in: the sandbox's own checks, plus
guards against giant outputs and against turning the gateway's internals into text.

Example:
    >>> compile_text("Hola {{ customer.first_name }}").render(customer={"first_name": "Ana"})
    'Hola Ana'
"""

from __future__ import annotations

import functools
import types
from typing import Any

import jinja2
import jinja2.sandbox as sandbox
from jinja2 import nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.sandbox import SecurityError

from gateway.texts.filters import NAMES, template_filter

MAX_OUTPUT = 20_000  # characters per rendered part; messages are short
UNSAFE_NAMES = frozenset({"mro"}).union(  # names the sandbox refuses at runtime anyway
    *(getattr(sandbox, n) for n in dir(sandbox) if n.startswith("UNSAFE_")))

_PLAIN = frozenset({str, int, float, bool, type(None)})


def printable(value: Any, depth: int = 0) -> Any:
    """What a template may turn into text: data, never a function, class or module, nor a
    list or dict holding one (their text shows the gateway's internals, e.g.
    "<function safe_range at 0x7f…>"). Every way to text goes through here: printing,
    `~`, and the value and arguments of every filter (`| string`, `| join`, `| upper`…)."""
    if value.__class__ in _PLAIN:  # nearly every value: text and numbers
        return value
    if isinstance(value, jinja2.Undefined):
        return value  # Jinja reports it (unknown name, or an attribute the sandbox refused)
    if callable(value) or isinstance(value, type | types.ModuleType):
        raise SecurityError("the template tried to print a function or an object, which is "
                            "not allowed")
    if depth < 8 and isinstance(value, list | tuple | set | frozenset | dict):
        for item in (value.items() if isinstance(value, dict) else value):
            printable(item, depth + 1)
    return value


class _Code(CodeGenerator):
    """Jinja's code generator, with `a ~ b` joined by the sandbox's `joinprintable`."""

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        self.write("environment.joinprintable((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")


def _guarded(apply: Any) -> Any:
    """A built-in filter that refuses functions, classes and modules as its input or its
    arguments (e.g. `{{ namespace | string }}`), as printing them is refused."""
    skip = 1 if getattr(apply, "jinja_pass_arg", None) else 0  # context/env comes first

    @functools.wraps(apply)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        for value in (*args[skip:], *kwargs.values()):
            printable(value)
        return apply(*args, **kwargs)
    return guarded


class _Env(sandbox.ImmutableSandboxedEnvironment):
    """The sandbox, plus a guard against giant strings ('x' * 10**9) and huge powers, and
    against internals turned into text (see `printable`)."""

    intercepted_binops = frozenset({"*", "**"})
    code_generator_class = _Code

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "**" and isinstance(right, int | float) and abs(right) > 64:
            raise SecurityError("the template tried to compute a huge power, which is not allowed")
        if operator == "*":
            for seq, n in ((left, right), (right, left)):
                if isinstance(seq, str | list | tuple) and isinstance(n, int) and \
                        len(seq) * n > MAX_OUTPUT:
                    raise SecurityError("the template tried to build a huge text, "
                                        "which is not allowed")
        return super().call_binop(context, operator, left, right)

    @staticmethod
    def joinprintable(parts: tuple[Any, ...]) -> str:
        return "".join(str(printable(part)) for part in parts)


ENV = _Env(undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=False,
            trim_blocks=True, lstrip_blocks=True, finalize=printable)
for _unused in ("lipsum", "cycler", "joiner", "dict"):  # nothing a message text needs
    ENV.globals.pop(_unused, None)
# (attr is attribute access, which the sandbox itself checks, naming the attribute)
ENV.filters = {name: apply if name == "attr" else _guarded(apply)
                for name, apply in ENV.filters.items()}
ENV.filters.update({name: template_filter(name) for name in NAMES})


@functools.lru_cache(maxsize=1024)
def compile_text(text: str) -> jinja2.Template:
    return ENV.from_string(text)


@functools.lru_cache(maxsize=1024)
def template_globals(template: jinja2.Template) -> tuple[dict[str, Any], frozenset[str]]:
    return dict(template.globals), frozenset(template.globals)


def clean_subject(text: str) -> str:
    return " ".join(text.split())  # str.split() also splits on \r, \n, \x0b, \u2028 …


def clean_body(text: str) -> str:
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    return "\n".join(lines).strip("\n")


