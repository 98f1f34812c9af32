"""Demo app written against Flask 1.0 or later."""

from importlib.metadata import version

import flask
from flask import Flask, render_template_string

FLASK_VERSION = version("flask")
app = Flask(__name__)


@app.route("/")
def index() -> str:
    return render_template_string(
        "foobar page rendered by flask {{ version }}{{ mark }}", version=FLASK_VERSION, mark="<ok>"
    )


def main() -> None:
    print(f"foobar: flask {FLASK_VERSION} from {flask.__file__}")
    response = app.test_client().get("/")
    print(f"foobar: GET / -> {response.status_code} {response.get_data(as_text=True)!r}")
