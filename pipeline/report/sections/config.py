"""The data, seed, overrides, code and packages of the run, and its full resolved config."""

from __future__ import annotations

import yaml

from pipeline.report.format import esc, finite
from pipeline.report.sections import Run

TITLE = "Config and provenance"


def body(run: Run) -> str:
    prov = run.prov
    config = yaml.safe_dump(prov.get("config", {}), sort_keys=True, default_flow_style=False, width=100)
    data = prov.get("data", {})
    code = prov.get("code_version", {})
    rows = [["data", esc(data.get("name"))], ["bars", esc(f"{data.get('bars', 'n/a'):,}" if finite(data.get("bars")) else "n/a")],
            ["period", esc(f"{str(data.get('first', ''))[:10]} to {str(data.get('last', ''))[:10]}")],
            ["symbols", esc(", ".join(data.get("symbols", [])))], ["data sha256", f"<code>{esc(data.get('sha256'))}</code>"],
            ["seed", esc(prov.get("seed"))], ["overrides", f"<code>{esc(' '.join(prov.get('overrides', [])) or '(none)')}</code>"],
            ["git commit", esc(f"{code.get('git_commit')}{' (uncommitted changes)' if code.get('dirty') else ''}")],
            ["python", esc(prov.get("python"))],
            ["packages", esc(", ".join(f"{k} {v}" for k, v in sorted(prov.get("packages", {}).items()) if v))]]
    table = "".join(f'<tr><th class="l">{k}</th><td class="l" style="white-space:normal">{v}</td></tr>' for k, v in rows)
    return (f'<div class="scroll"><table>{table}</table></div><h3>Resolved config</h3>'
            f'<pre id="config">{esc(config)}</pre>')
