"""The local sink and the SendGrid client apply the same limits, defined once in sendgrid_rules."""

import ast
import json
from pathlib import Path

import tessera.activations.sink as sink_pkg
from tessera.activations.providers import sendgrid_rules
from tessera.activations.providers.base import messages_from_frame
from tessera.activations.providers.sendgrid_email import build_mail_body
from tessera.activations.sink import sendgrid_errors


def test_a_full_client_batch_passes_the_sink_and_one_more_is_refused_naming_the_limit(
    messages_factory,
):
    limit = sendgrid_rules.MAX_PERSONALIZATIONS
    full = build_mail_body(messages_from_frame(messages_factory(limit)), "a@b.com", "Shop")
    assert sendgrid_errors(json.loads(json.dumps(full))) == []
    over = build_mail_body(messages_from_frame(messages_factory(limit + 1)), "a@b.com", "Shop")
    errs = sendgrid_errors(over)
    assert errs[0]["field"] == "personalizations"
    assert f"limited to {limit} personalizations" in errs[0]["message"]


def test_the_sink_package_defines_no_limit_of_its_own():
    """Every MAX_*/CANCEL_* the sink uses is imported from the provider's rules, not re-typed."""
    own = []
    for path in sorted(Path(sink_pkg.__file__).parent.glob("*.py")):
        for node in ast.parse(path.read_text()).body:
            targets = node.targets if isinstance(node, ast.Assign) else []
            for t in targets:
                if isinstance(t, ast.Name) and t.id.startswith(("MAX_", "CANCEL_")):
                    own.append(f"{path.name}:{node.lineno} {t.id}")
    assert own == []
    assert sink_pkg.MAX_PERSONALIZATIONS is sendgrid_rules.MAX_PERSONALIZATIONS
    assert sink_pkg.CANCEL_BEFORE_S is sendgrid_rules.CANCEL_BEFORE_S
