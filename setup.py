"""evgate: an event-native API gateway between Kafka and HTTP."""
from setuptools import find_packages, setup

setup(
    name="evgate",
    version="0.1.0",
    description="Event-native API gateway: HTTP, SSE, WebSocket and webhooks in front of Kafka",
    long_description=open("README.md", encoding="utf-8").read() if __import__("os").path.exists("README.md") else "",
    long_description_content_type="text/markdown",
    python_requires=">=3.11",
    packages=find_packages(include=["evgate", "evgate.*"]),
    include_package_data=True,
    package_data={"evgate": ["repository/migrations/*.ini", "repository/migrations/*.py",
                             "repository/migrations/versions/*.py", "management/*.json",
                             "management/console/templates/*.html",
                             "management/console/static/*.css",
                             "management/console/static/*.js",
                             "management/console/static/vendor/*"]},
    install_requires=[
        "flask>=3.0",
        "gevent>=24.2",
        "gunicorn[gevent]>=23.0",
        "confluent-kafka>=2.6",
        # batch ingestion validates records without building their objects (msgspec.Raw)
        "msgspec>=0.19",
        "jsonpath-ng>=1.6",
        # linear-time matching of the expression language's regular expressions (evgate/el/regex.py)
        "google-re2>=1.1",
        "click>=8.1",
        "pydantic>=2.7",
        "SQLAlchemy>=2.0",
        "alembic>=1.13",
        "simple-websocket>=1.0",
        "PyJWT[crypto]>=2.8",
        # Kafka PKCS#12/PEM stores (evgate/kafka/security/); 45 for the tests'
        # pkcs12.serialize_java_truststore.
        "cryptography>=45",
        "prometheus-client>=0.20",
        "requests>=2.31",
        "psycopg[binary]>=3.1",
    ],
    extras_require={
        "dev": [
            "pytest>=8.0",
            "pytest-timeout>=2.3",
            "hypothesis>=6.100",
            "websocket-client>=1.7",
            "websocat>=1.13",
            # the console's browser tests (headless Chromium + chromedriver from Debian)
            "selenium>=4.20",
            # `lint-imports`: the layer contracts in .importlinter, run by `make test`
            "import-linter>=2.0",
        ],
    },
    entry_points={
        "console_scripts": ["evgate=evgate.cli:main"],
    },
)
