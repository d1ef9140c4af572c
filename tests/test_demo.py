"""`centralita demo`, the README's first command, as a newcomer runs it: the real console
script, in an empty directory, with no accounts, credentials or network."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.test_cli import COMMAND


def test_the_demo_plays_the_whole_day_in_under_a_minute(tmp_path: Path) -> None:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("CENTRALITA_")}
    environment.update(COLUMNS="100", NO_COLOR="1", PYTHONUTF8="1")
    done = subprocess.run([*COMMAND, "demo"], cwd=tmp_path, env=environment,
                          capture_output=True, text=True, timeout=60, check=False)
    transcript = done.stdout
    assert done.returncode == 0, transcript + done.stderr
    # Sunday night on Telegram: the number and the opening hours.
    assert "María sees on Telegram" in transcript
    assert "Tu número de solicitud es el #1001" in transcript
    assert "lunes a viernes, de 9:00 a 19:00 hrs" in transcript
    # The opening digest, Ana's email threaded by subject, Rosa's Slack DM.
    assert "Mientras estábamos cerrados llegó 1 solicitud" in transcript
    assert "Ana receives by email: Re: Factura duplicada [#1002]" in transcript
    assert "Rosa sees in her Slack DM" in transcript and "#1003" in transcript
    # Pedro's answer reaches María signed; progress for Ana; resolution, survey, close.
    assert "Hola María, tu pedido salió hoy por Chilexpress" in transcript
    assert "— Pedro Soto, Tienda Aurora" in transcript
    assert "seguimos trabajando en tu" in transcript
    assert "¿Todo sigue funcionando bien?" in transcript
    assert "María's ticket #1001 is closed, satisfaction 5/5." in transcript
    assert "centralita report" in transcript and "telegram" in transcript
    assert "Traceback" not in done.stderr
