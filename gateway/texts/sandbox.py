"""The Jinja2 sandbox every automatic text is rendered in: the sandbox's own checks, plus
a budget for the work a text may do (gateway.texts.budget: the items of every loop, every
call and every filter are counted steps, and every new value is size-checked, most before
they are made: gateway.texts.guards), and a guard against turning the gateway's internals
into text.

Example:
    >>> compile_text("Hola {{ customer.first_name }}").render(customer={"first_name": "Ana"})
    'Hola Ana'
"""

from __future__ import annotations

import functools
import types
from collections.abc import Callable
from typing import Any

import jinja2
import jinja2.sandbox as sandbox
from jinja2 import nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.runtime import LoopContext
from jinja2.sandbox import SandboxedEscapeFormatter, SandboxedFormatter, SecurityError
from markupsafe import Markup

from gateway.texts.budget import (
    CALL_STEPS,
    MAX_OUTPUT,
    RenderLimits,
    budgeted,
    charge,
    checked,
    counted,
    joined,
    refuse_format,
    refuse_spec,
    walk,
)
from gateway.texts.filters import NAMES, template_filter
from gateway.texts.guards import FILTERS, before_binop, before_method

__all__ = ["ENV", "MAX_OUTPUT", "UNSAFE_NAMES", "clean_body", "clean_subject", "compile_text",
           "printable", "template_globals"]

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
        charge(len(value))  # a list of lists of lists… is walked item by item
        for item in (value.items() if isinstance(value, dict) else value):
            printable(item, depth + 1)
    return value


class _Code(CodeGenerator):
    """Jinja's code generator, with `a ~ b` joined by the sandbox's `joinprintable`, the
    items of every loop counted (`environment.counted(iterable)`), and no big constant
    computed while compiling."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._loop_iterables: set[int] = set()  # ids of the nodes a loop walks over

    def visit(self, node: nodes.Node, *args: Any, **kwargs: Any) -> Any:
        if id(node) not in self._loop_iterables:
            return super().visit(node, *args, **kwargs)
        self.write("environment.counted(")
        super().visit(node, *args, **kwargs)
        self.write(")")
        return None

    def visit_For(self, node: nodes.For, frame: Frame) -> None:
        self._loop_iterables.add(id(node.iter))
        super().visit_For(node, frame)

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        self.write("environment.joinprintable((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")

    def _output_child_to_const(self, node: nodes.Expr, frame: Frame, finalize: Any) -> str:
        if isinstance(node, nodes.Concat):  # left to run, and be counted, when rendering
            raise nodes.Impossible()
        const = super()._output_child_to_const(node, frame, finalize)
        if len(const) > 1024 and not isinstance(node, nodes.TemplateData):
            raise nodes.Impossible()
        return const


def _guarded(name: str, apply: Any) -> Any:
    """A built-in filter that refuses functions, classes and modules as its input or its
    arguments (e.g. `{{ namespace | string }}`), as printing them is refused. It costs a
    step per item of its input, is refused when it would make a value too big, and what
    it makes lazily (map, select…) costs a step per item."""
    skip = 1 if getattr(apply, "jinja_pass_arg", None) else 0  # context/env comes first
    before = FILTERS.get(name)

    @functools.wraps(apply)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        for value in (*args[skip:], *kwargs.values()):
            printable(value)
        if len(args) > skip:
            if before is not None:
                args = (*args[:skip], before(args[skip], args[skip + 1:], kwargs),
                        *args[skip + 1:])
            charge(1 + walk(args[skip]))
        out = apply(*args, **kwargs)
        return counted(out) if isinstance(out, types.GeneratorType) else checked(out)
    return guarded


class _Formatter(SandboxedFormatter):
    """str.format in the sandbox, refusing widths such as '{:>1000000000}'."""

    def format_field(self, value: Any, format_spec: str) -> Any:
        refuse_spec(format_spec)
        return super().format_field(value, format_spec)


class _EscapeFormatter(_Formatter, SandboxedEscapeFormatter):
    pass


class _Template(jinja2.Template):
    """A compiled text; `render()` outside the engine (a doctest, a script) is budgeted too."""

    def render(self, *args: Any, **kwargs: Any) -> str:
        with budgeted(RenderLimits().studio()):
            return super().render(*args, **kwargs)


class _Env(sandbox.ImmutableSandboxedEnvironment):
    """The sandbox, counting every call as CALL_STEPS steps, refusing giant texts ('x' * 10**9),
    lists and numbers (99 ** 64 ** 64) before they are made, and internals turned into
    text (see `printable`)."""

    intercepted_binops = frozenset({"*", "**", "+", "%"})
    code_generator_class = _Code
    template_class = _Template
    concat = staticmethod(joined)  # the output of every block, macro and filter block
    counted = staticmethod(counted)

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        before_binop(operator, left, right)
        return checked(self.binop_table[operator](left, right))

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        charge(CALL_STEPS)
        if isinstance(__obj, LoopContext) and args:  # loop(children) in a recursive loop
            args = (counted(args[0]), *args[1:])
        elif isinstance(getattr(__obj, "__self__", None), str):
            args = before_method(__obj, args, kwargs)
        return checked(super().call(__context, __obj, *args, **kwargs))

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        if not isinstance(value, types.MethodType | types.BuiltinMethodType) or \
                value.__name__ not in ("format", "format_map") or \
                not isinstance(value.__self__, str):
            return None
        text: str = value.__self__
        formatter = (_EscapeFormatter(self, escape=text.escape) if isinstance(text, Markup)
                     else _Formatter(self))
        mapping = value.__name__ == "format_map"

        def wrapper(*args: Any, **kwargs: Any) -> str:
            if mapping:
                if kwargs or len(args) != 1:
                    raise TypeError("format_map() takes exactly one argument")
                args, kwargs = (), args[0]
            refuse_format(text, (*args, *kwargs.values()))
            return checked(type(text)(formatter.vformat(text, args, kwargs)))
        return functools.update_wrapper(wrapper, value)

    @staticmethod
    def joinprintable(parts: tuple[Any, ...]) -> str:
        return checked(joined([str(printable(part)) for part in parts]))


ENV = _Env(undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=False,
           trim_blocks=True, lstrip_blocks=True, finalize=printable,
           optimized=False)  # nothing computed at compile time, where no budget counts it
for _unused in ("lipsum", "cycler", "joiner", "dict"):  # nothing a message text needs
    ENV.globals.pop(_unused, None)
# (attr is attribute access, which the sandbox itself checks, naming the attribute)
ENV.filters = {name: apply if name == "attr" else _guarded(name, apply)
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
