"""The domain of the placement dashboard. Knows nothing of Streamlit or APScheduler."""
