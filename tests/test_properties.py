"""Properties over arbitrary input (hypothesis): no template text an admin can type gets
out of the sandbox, and no text from a customer, an agent or a template can put a line
break into an email header (and so add a header)."""

from __future__ import annotations

from datetime import UTC, datetime
from email import message_from_bytes, policy

from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.email.compose import compose
from adapters.email.settings import EmailSettings, MailboxSettings
from adapters.email.tokens import ReplyTokens
from gateway.core.messages import Outbound
from gateway.core.text import clean_line, clean_text
from gateway.texts.engine import TemplateEngine, TemplateError, TemplateSource

ENGINE = TemplateEngine(timezone="America/Santiago")
CONTEXT = ENGINE.sample_context("ack")
ROOTS = ["''", "()", "[]", "{}", "customer", "ticket", "ticket.number", "company", "range",
         "lipsum", "cycler", "joiner", "namespace", "self", "loop", "due_at", "x"]
ATTRS = ["__class__", "__mro__", "__subclasses__", "__globals__", "__init__", "__base__",
         "__builtins__", "__dict__", "__getattribute__", "mro", "format", "format_map",
         "gi_frame", "f_globals", "__import__", "os", "popen", "name", "number", "upper"]
LEAKS = ("<class", "<function", "<module", "<built-in", "__builtins__", "subprocess")


@st.composite
def expressions(draw: st.DrawFn) -> str:
    text = draw(st.sampled_from(ROOTS))
    for _ in range(draw(st.integers(0, 4))):
        step = draw(st.sampled_from(["attr", "item", "call", "filter"]))
        if step == "attr":
            text += "." + draw(st.sampled_from(ATTRS))
        elif step == "item":
            index = draw(st.sampled_from(["0", "1", "-1", repr(draw(st.sampled_from(ATTRS)))]))
            text += f"[{index}]"
        elif step == "call":
            text += "()"
        else:
            text += " | " + draw(st.sampled_from(["attr('__class__')", "string", "list",
                                                   "first", "when", "map('upper')"]))
    return text


@st.composite
def template_texts(draw: st.DrawFn) -> str:
    parts = draw(st.lists(st.one_of(
        st.text(max_size=20),
        expressions().map(lambda e: "{{ " + e + " }}"),
        expressions().map(lambda e: "{% set y = " + e + " %}{{ y }}"),
        expressions().map(lambda e: "{% for i in " + e + " %}{{ i }}{% endfor %}")),
        max_size=4))
    return "".join(parts)


@settings(max_examples=300, deadline=None)
@given(template_texts())
def test_no_template_text_gets_out_of_the_sandbox(body: str) -> None:
    try:
        ENGINE.validate("", body, "ack")
    except TemplateError:
        return  # refused with an admin-facing message: fine
    source = TemplateSource(key="ack", locale="es", channel="", subject="", body=body,
                            version=1)
    try:
        _, rendered = ENGINE.render_source(source, CONTEXT)
    except TemplateError:
        return
    assert not any(leak in rendered for leak in LEAKS), rendered


BOX = MailboxSettings(name="soporte", address="soporte@example.com", imap_host="localhost",
                      imap_user="soporte", smtp_host="localhost",
                      display_name="Soporte\r\nBcc: evil@example.com")
NASTY = st.lists(st.one_of(
    st.text(alphabet=list("ab :<>@\r\n\t\x0b\x0c\u2028\u2029\x00ñ"), max_size=8),
    st.sampled_from(["Bcc: x@evil.example", "\r\nTo: y@evil.example", "\nSubject: hi",
                     "=?utf-8?q?a=0D=0ABcc:_x@evil?="])), max_size=6).map("".join)


@settings(max_examples=300, deadline=None)
@given(subject=NASTY, ticket_subject=NASTY, text=st.text(max_size=80))
def test_no_text_puts_a_line_break_into_an_email_header(subject: str, ticket_subject: str,
                                                        text: str) -> None:
    out = Outbound(channel="email", recipient="maria@example.org", text=text,
                   subject=subject, ticket_number=1042, automatic=True,
                   reply_to=("abc@mail.example.org",),
                   ticket_subject=ticket_subject, locale="es")
    message, _ = compose(out, mailbox=BOX, settings=EmailSettings(), tokens=ReplyTokens("s"),
                         now=datetime(2026, 11, 22, tzinfo=UTC))
    wire = message.as_bytes(policy=policy.SMTP)
    parsed = message_from_bytes(wire, policy=policy.default)
    names = {name.lower() for name in parsed}
    assert "bcc" not in names and parsed.get_all("To") == ["maria@example.org"]
    for name, value in parsed.items():
        assert "\r" not in str(value) and "\n" not in str(value), (name, value)


WEIRD = st.text(alphabet=st.sampled_from(
    ["a", "ó", "😀", " ", "\t", "\n", "\r", "\x00", "\x0b", "\x1c", "\x85", "\xa0",
     "\u2028", "\u3000", "\udc80", "\ud800"]) | st.characters(), max_size=40)


@given(WEIRD, st.integers(1, 50))
@settings(max_examples=500, deadline=None)
def test_whatever_a_channel_hands_over_is_stored_as_clean_text(raw: str, limit: int) -> None:
    """Text from any channel (surrogates from undecodable email bytes, NUL, CR, Unicode
    separators) is stored as valid UTF-8 with '\\n' line endings, and a subject or a name
    as one line; cleaning what is clean changes nothing (the fast paths keep it as is)."""
    text = clean_text(raw)
    text.encode("utf-8")  # no lone surrogate survives
    assert "\x00" not in text and "\r" not in text
    assert clean_text(text) == text

    line = clean_line(raw, limit)
    line.encode("utf-8")
    assert len(line) <= limit and line == line.strip()
    assert not any(c.isspace() and c != " " for c in line) and "  " not in line
    assert clean_line(line, limit) == line
