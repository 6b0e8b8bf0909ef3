FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md alembic.ini ./
COPY api api
COPY channels channels
COPY core core
COPY nlu nlu
RUN pip install --no-cache-dir .
ENV SWITCHBOARD_DATA_DIR=/data
VOLUME /data
EXPOSE 8000
# Demo accounts (public passwords) only when asked with SWITCHBOARD_DEMO=1; `serve` refuses to start without a
# SWITCHBOARD_SECRET_KEY of your own.
CMD ["sh", "-c", "switchboard db upgrade && switchboard demo --if-enabled --if-empty && switchboard serve --host 0.0.0.0 --port 8000"]
