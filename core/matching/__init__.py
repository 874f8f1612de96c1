"""Matching: rules, contactable therapists, eligibility and proposals (docs/architecture.md).

The contract names other code and checks call live here: `propose_inquiry`,
`ineligibility_reasons`.
"""

from core.matching.eligibility import ineligibility_reasons, propose_inquiry

__all__ = ["ineligibility_reasons", "propose_inquiry"]
