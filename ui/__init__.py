"""Streamlit-only helpers shared by app.py and the pages (no business rules here)."""
