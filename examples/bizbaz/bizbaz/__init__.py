"""Demo app written against Flask 0.12.4."""

import flask
from flask import Flask, render_template_string

app = Flask(__name__)


@app.route("/")
def index() -> str:
    return render_template_string(
        "bizbaz page rendered by flask {{ version }}{{ mark }}",
        version=flask.__version__,
        mark="<ok>",
    )


def main() -> None:
    print(f"bizbaz: flask {flask.__version__} from {flask.__file__}")
    response = app.test_client().get("/")
    print(f"bizbaz: GET / -> {response.status_code} {response.get_data(as_text=True)!r}")
