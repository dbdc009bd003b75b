"""Offline validation reports: ``validation.json`` and ``data_docs/index.html`` in a fixed folder.

The HTML page is GX's own Data Docs validation page, rendered from the GX result JSON with GX's
page renderer straight into ``<directory>/data_docs`` (no site builder, no store, no random temp
folder). GX's page loads jQuery, Bootstrap, Font Awesome and Vega from CDNs, and no installed
package ships local copies, so the page is made self-contained instead: external scripts,
stylesheets and images are removed, the jQuery-only inline scripts with them, and a small
stylesheet is inlined. Nothing on the page needs JavaScript: GX renders its tables server-side.
A seqops summary (verdict, each failed rule with its severity, policy and example lines) heads
the page. If GX's renderer fails, the page is our own plain rendering of the same GX result.
"""

from __future__ import annotations

import copy
import html
import json
import logging
import re
from pathlib import Path

from seqops.validation.suites import import_gx
from seqops.validation.validate import EXAMPLES_SHOWN, ValidationResult, format_example, result_json

log = logging.getLogger(__name__)

_STYLE = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0;
       color: #212529; background: #fff; }
a { color: #0b5cad; }
.container-fluid { padding: 16px 32px; }
.row { display: flex; flex-wrap: wrap; gap: 16px; }
.row > [class*="col-"] { flex: 1 1 0; min-width: 0; }
.row > .col-lg-2, .row > .col-md-2 { flex: 0 0 220px; }
.row > .col-12 { flex: 0 0 100%; } .row > .col-6 { flex: 0 0 calc(50% - 8px); }
.d-none, .btn-group-toggle, .card:has(.btn-group-toggle) { display: none !important; }
.card { border: 1px solid #dee2e6; border-radius: 6px; margin: 0 0 16px; }
.card-header { background: #f5f6f8; padding: 6px 10px; border-bottom: 1px solid #dee2e6; }
.card-body { padding: 8px 10px; }
table { border-collapse: collapse; width: 100%; margin: 6px 0 14px; }
th, td { border: 1px solid #dee2e6; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f5f6f8; }
.fa-check-circle::before { content: "\\2714 passed"; color: #1e7e34; font-weight: 600; }
.fa-times::before { content: "\\2716 failed"; color: #b00020; font-weight: 600; }
.fa-exclamation-triangle::before { content: "\\26A0 error"; color: #b36b00; font-weight: 600; }
.text-danger { color: #b00020; } .text-success { color: #1e7e34; }
code, pre { background: #f5f6f8; padding: 1px 4px; border-radius: 3px; }
.seqops-summary { border-bottom: 2px solid #dee2e6; padding: 16px 32px; }
.seqops-verdict { font-size: 20px; font-weight: 700; }
.seqops-verdict.accepted { color: #1e7e34; } .seqops-verdict.rejected { color: #b00020; }
.seqops-error { color: #b00020; font-weight: 600; } .seqops-warning { color: #b36b00; font-weight: 600; }
.seqops-summary pre { white-space: pre-wrap; margin: 2px 0 10px; }
"""


def write_report(result: ValidationResult, directory: Path) -> dict[str, Path]:
    """Write ``validation.json`` and ``data_docs/index.html`` for one batch into ``directory``.

    Args:
        result: the batch's validation result.
        directory: the report folder (created if needed; files in it are overwritten).

    Returns:
        ``{"json": <validation.json>, "data_docs": <data_docs/index.html>}``.
    """
    directory = Path(directory)
    docs = directory / "data_docs"
    docs.mkdir(parents=True, exist_ok=True)
    json_path = directory / "validation.json"
    json_path.write_text(result_json(result) + "\n", encoding="utf-8")
    page = docs / "index.html"
    page.write_text(render_html(result), encoding="utf-8")
    return {"json": json_path, "data_docs": page}


def render_html(result: ValidationResult) -> str:
    """The self-contained report page: seqops summary + GX's Data Docs page (or a plain fallback)."""
    summary = _summary_html(result)
    try:
        page = _sanitize(_gx_page(result.gx_result))
    except Exception:  # GX's renderers are internal API; a report must still be written.
        log.warning("GX Data Docs rendering failed; writing the plain report", exc_info=True)
        page = _plain_page(result)
    verdict = "accepted" if result.accepted else "REJECTED"
    title = html.escape(f"seqops validation: {result.dataset} batch {result.batch_id} {verdict}")
    page = re.sub(r"(?is)<title>.*?</title>", f"<title>{title}</title>", page, count=1)
    head_end = page.find("</head>")
    page = page[:head_end] + f"<style>{_STYLE}</style>\n" + page[head_end:]
    body = re.search(r"<body\b[^>]*>", page)
    cut = body.end() if body else 0
    return page[:cut] + summary + page[cut:]


def _gx_page(gx_result: dict) -> str:
    """GX's Data Docs HTML of one validation result, rendered from its JSON."""
    import_gx()
    from great_expectations.core.expectation_validation_result import (
        expectationSuiteValidationResultSchema,
    )
    from great_expectations.render.renderer import ValidationResultsPageRenderer
    from great_expectations.render.view import DefaultJinjaPageView

    loaded = expectationSuiteValidationResultSchema.load(copy.deepcopy(gx_result))
    document = ValidationResultsPageRenderer().render(loaded)
    return DefaultJinjaPageView().render(document)


_EXTERNAL = r"(?:https?:)?//"


def _sanitize(page: str) -> str:
    """Strip everything that needs the network or jQuery; keep GX's server-rendered content."""
    page = re.sub(r"(?is)<script\b[^>]*>.*?</script\s*>", "", page)
    page = re.sub(r"(?is)<link\b[^>]*>", "", page)  # CDN stylesheets and the missing favicon
    page = re.sub(rf"(?is)<img\b[^>]*\bsrc=[\"']{_EXTERNAL}[^>]*>", "", page)
    page = re.sub(rf"(?i)url\(\s*['\"]?{_EXTERNAL}[^)]*\)", "none", page)
    page = re.sub(r"(?is)<footer\b.*?</footer\s*>", "", page)  # GX newsletter banner
    # Links to GX site pages that this single-page report does not have.
    page = re.sub(r"(?i)href=\"(?!#)[^\"]*\.html[^\"]*\"", 'href="#"', page)
    page = re.sub(rf"(?i)\shref=\"{_EXTERNAL}[^\"]*\"", "", page)
    return page


def _summary_html(result: ValidationResult) -> str:
    e = html.escape
    verdict = "ACCEPTED" if result.accepted else "REJECTED"
    parts = [
        '<section class="seqops-summary" id="seqops-summary">',
        f'<div class="seqops-verdict {verdict.lower()}">{verdict}</div>',
        f"<p>dataset <code>{e(result.dataset)}</code>, batch <code>{e(result.batch_id)}</code>: "
        f"{result.row_count} rows, {len(result.errors())} error(s), {len(result.warnings())} "
        "warning(s).</p>",
    ]
    failed = [*result.errors(), *result.warnings()]
    if failed:
        parts.append(
            "<table><thead><tr><th>severity</th><th>rule</th><th>column</th><th>policy</th>"
            "<th>observed</th><th>example rows</th></tr></thead><tbody>"
        )
        for o in failed:
            examples = "\n".join(format_example(x) for x in o.examples[:EXAMPLES_SHOWN])
            parts.append(
                f'<tr class="seqops-failed" data-rule="{e(o.rule)}">'
                f'<td class="seqops-{e(o.severity)}">{e(o.severity)}</td><td><code>{e(o.rule)}</code></td>'
                f"<td>{e(o.column or '')}</td><td>{e(o.policy)}</td><td>{e(o.detail)}</td>"
                f"<td><pre>{e(examples)}</pre></td></tr>"
            )
        parts.append("</tbody></table>")
    if result.gaps:
        parts.append(f"<p>{len(result.gaps)} gap(s) inside series (first 20):</p><table><tbody>")
        parts.append(
            "<tr><th>series</th><th>after</th><th>before</th><th>missing steps</th><th>severity</th></tr>"
        )
        for g in result.gaps[:20]:
            parts.append(
                f"<tr><td>{e(str(g['series_id']))}</td><td>{e(g['after'])}</td><td>{e(g['before'])}</td>"
                f"<td>{g['missing_steps']}</td><td>{e(g['severity'])}</td></tr>"
            )
        parts.append("</tbody></table>")
    parts.append("<p>Below: the Great Expectations validation result (every expectation).</p></section>")
    return "\n".join(parts)


def _plain_page(result: ValidationResult) -> str:
    """Our own rendering of the GX result, used when GX's renderer is unavailable."""
    e = html.escape
    rows = []
    for item in result.gx_result.get("results", []):
        config = item.get("expectation_config", {})
        kwargs = {k: v for k, v in config.get("kwargs", {}).items() if k not in ("batch_id", "value_set")}
        body = item.get("result") or {}
        status = (
            '<i class="fas fa-check-circle"></i>' if item.get("success") else '<i class="fas fa-times"></i>'
        )
        rows.append(
            f"<tr><td>{status}</td><td><code>{e(config.get('type', ''))}</code></td>"
            f"<td>{e(json.dumps(kwargs, default=str))}</td>"
            f"<td>{e(str(body.get('unexpected_count', body.get('observed_value', ''))))}</td></tr>"
        )
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>Validation result</title></head><body>"
        "<div class='container-fluid'><h4>Expectation Validation Result</h4><table><thead><tr>"
        "<th>status</th><th>expectation</th><th>arguments</th><th>unexpected / observed</th></tr>"
        f"</thead><tbody>{''.join(rows)}</tbody></table></div></body></html>"
    )
