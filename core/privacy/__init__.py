"""Data-subject rights and read auditing (docs/architecture.md, "Privacy"): the Art. 15
export of everything about one patient, anonymisation on request or after the retention
period, and the record of who opened which patient's data."""
