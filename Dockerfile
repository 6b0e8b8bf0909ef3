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
CMD ["sh", "-c", "switchboard db upgrade && switchboard demo --if-empty && switchboard serve --host 0.0.0.0 --port 8000"]
