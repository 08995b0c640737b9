"""Per-resource policy exemptions: explicit, with a reason, and always listed.

A resource is exempt from a policy when it carries, as a tag (AWS), label (GCP, Kubernetes),
annotation (Kubernetes) or in a gpuplane component's ``tags``:

================================  ============================================================
form                              keys and values
================================  ============================================================
tags, annotations, summary tags   ``gpuplane/exempt: training-on-spot,gpu-pool-max-nodes``
                                  ``gpuplane/exempt-reason: reserved capacity until 2026-09``
GCP labels (no ``/`` or ``,``,    ``gpuplane-exempt: training-on-spot.gpu-pool-max-nodes``
lowercase, max 63 characters)     ``gpuplane-exempt-reason: reserved-capacity-until-2026-09``
================================  ============================================================

Both forms are accepted on every resource. Policy names are kebab-case, so ``.`` separates them
unambiguously in the label-safe form. An exemption without a reason is NOT honoured (the
``exemption-valid`` policy reports it), and one naming an unknown policy is reported too, so a
typo never exempts silently.

When an exemption suppresses a finding, the policy marks itself not applicable for that resource
with a reason in ``reason_line`` form; ``pulumi preview`` shows it, and ``gpuplane plan`` lists
every declared exemption with what it suppressed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from policies.resources import ResourceView, tag_maps

EXEMPT_KEYS = ("gpuplane/exempt", "gpuplane-exempt")
REASON_KEYS = ("gpuplane/exempt-reason", "gpuplane-exempt-reason")


@dataclass(frozen=True)
class Exemption:
    """The exemptions one resource declares."""

    urn: str
    key: str
    """The tag/label key it was read from."""
    policies: tuple[str, ...]
    reason: str | None

    def covers(self, policy: str) -> bool:
        return policy in self.policies


def _split(value: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in re.split(r"[,.]", value) if p.strip())


def declared(view: ResourceView) -> Exemption | None:
    """The exemption a resource declares (tags/labels/annotations/summary tags), or None."""
    key: str | None = None
    names: tuple[str, ...] = ()
    reason: str | None = None
    for m in tag_maps(view):
        for k in EXEMPT_KEYS:
            v = m.get(k)
            if isinstance(v, str) and v.strip():
                key, names = k, names + _split(v)
        for k in REASON_KEYS:
            v = m.get(k)
            if isinstance(v, str) and v.strip():
                reason = v.strip()
    if key is None:
        return None
    return Exemption(view.urn, key, tuple(dict.fromkeys(names)), reason)


NOT_EXEMPTABLE = frozenset({"exemption-valid", "exemption-scope"})
"""The policies that judge exemptions themselves: an exemption never suppresses them."""


def honoured(view: ResourceView, policy: str) -> Exemption | None:
    """The exemption that suppresses ``policy`` on this resource: it names the policy and has a reason.

    ``exemption-valid`` and ``exemption-scope`` cannot be exempted.
    """
    if policy in NOT_EXEMPTABLE:
        return None
    ex = declared(view)
    return ex if ex is not None and ex.covers(policy) and ex.reason else None


# Policy messages never contain " — " (em dash), so the reason (any text) ends at the last one.
REASON_LINE = re.compile(r"^exempted by (?P<key>\S+) on (?P<urn>\S+) \(reason: (?P<reason>.*)\) — (?P<message>.*)$")


def reason_line(ex: Exemption, message: str) -> str:
    """One suppressed finding, in the form the plan engine parses back (``REASON_LINE``)."""
    reason = " ".join(str(ex.reason).split())
    return f"exempted by {ex.key} on {ex.urn} (reason: {reason}) — {' '.join(message.split())}"


def problems(ex: Exemption, known_policies: set[str]) -> list[str]:
    """What is wrong with a declared exemption (no reason, unknown policy names)."""
    out: list[str] = []
    if not ex.policies:
        out.append(
            f"Tag '{ex.key}' names no policy. Set it to the policies to exempt, e.g. 'training-on-spot', or remove it."
        )
    unknown = [p for p in ex.policies if p not in known_policies]
    if unknown:
        out.append(
            f"Tag '{ex.key}' names unknown policies {unknown}. Use names from the pack: {sorted(known_policies)}."
        )
    if not ex.reason:
        out.append(
            f"Tag '{ex.key}' has no reason, so it is not honoured. Add '{REASON_KEYS[0]}' (label form '{REASON_KEYS[1]}') saying why."
        )
    return out
