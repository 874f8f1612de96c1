# One image for the dashboard, the job runner and the migration step.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY requirements.txt ./
RUN pip install -r requirements.txt
COPY . .
RUN useradd --create-home --uid 10001 app && mkdir -p var && chown -R app var
USER app
EXPOSE 8501
CMD ["python", "-m", "streamlit", "run", "server.py", "--server.address", "0.0.0.0", "--server.port", "8501"]
