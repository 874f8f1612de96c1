"""Imports of therapist data from the KBV doctor search (116117) and the predecessor's snapshot
files: parsing (`parse`), identity keys (`identity`) and change computation (`diff`) are pure;
the services that record runs and apply reviewed changes build on them."""
