"""A real Rust (PyO3) extension shaded beside another release of itself: cryptography 49,
whose ``_rust`` library keeps the module paths it imports and registers as unterminated
literals packed between other literals (``...IPAddresscryptography.hazmat...kbkdfOCSP...``)."""

from __future__ import annotations

import pytest

from helpers import Venv
from pypi import wheels
from test_real_compiled import CROSSED, _one, shaded_beside, verify
from wheelshade import shade

pytestmark = pytest.mark.network

#: Exercises Rust code paths that import Python modules by name at call time (Fernet's
#: cipher, key loading, signatures), not only at import.
WORK = """
    from importlib import import_module
    fernet = import_module(c.__name__ + '.fernet')
    hashes = import_module(c.__name__ + '.hazmat.primitives.hashes')
    serialization = import_module(c.__name__ + '.hazmat.primitives.serialization')
    asym = c.__name__ + '.hazmat.primitives.asymmetric'
    ec, rsa, padding = (import_module(f'{asym}.{m}') for m in ('ec', 'rsa', 'padding'))
    f = fernet.Fernet(fernet.Fernet.generate_key())
    h = hashes.Hash(hashes.SHA256())
    h.update(b'a')
    key = rsa.generate_private_key(65537, 2048)
    sig = key.sign(b'm', padding.PKCS1v15(), hashes.SHA256())
    key.public_key().verify(sig, b'm', padding.PKCS1v15(), hashes.SHA256())
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    loaded = serialization.load_pem_private_key(pem, None)
    out[c.__name__] = [c.__version__, f.decrypt(f.encrypt(b'hi')).decode(),
        h.finalize().hex()[:8], type(ec.generate_private_key(ec.SECP256R1())).__module__,
        type(loaded).__name__]
"""


@pytest.fixture(scope="module")
def cryptography_env(tmp_path_factory: pytest.TempPathFactory) -> tuple[Venv, str]:
    folder = wheels("cryptography==49.0.0", "cryptography==50.0.2", "cffi==2.0.0",
                    "pycparser==3.11")
    # cffi is not in the set, so the load check notes the module instead of loading it;
    # the tests below load it.
    result = shade([], [_one(folder, "cryptography-49.0.0")],
                   out_dir=tmp_path_factory.mktemp("cryptography") / "out")
    (report,) = result.wheels
    verify(report.output, "cryptography==50.0.2", folder)
    env = Venv.create(report.output.parent.parent / "env")
    env.install(report.output, *(_one(folder, p) for p in (
        "cryptography-50.0.2", "cffi-2.0.0", "pycparser-3.11")))
    assert env.pip("check").returncode == 0
    return env, report.mapping["cryptography"]


@pytest.mark.parametrize("shaded_first", [True, False], ids=["shaded-first", "original-first"])
def test_cryptography_rust_extension_beside_another_cryptography(
    cryptography_env: tuple[Venv, str], shaded_first: bool
) -> None:
    env, new = cryptography_env
    first, second = (new, "cryptography") if shaded_first else ("cryptography", new)
    data = env.json(
        f"import json, sys\nimport {first}\nimport {second}\n{CROSSED}\nout = {{}}\n"
        f"for c in ({new}, cryptography):\n" + WORK
        + f"out['crossed'] = crossed({new!r}, 'cryptography')\n"
        "print(json.dumps(out))"
    )
    assert isinstance(data, dict)
    assert data["crossed"] == []
    common = ["hi", "ca978112", "RSAPrivateKey"]
    shaded, original = data[new], data["cryptography"]
    assert [shaded[0], *shaded[1:3], shaded[4]] == ["49.0.0", *common]
    assert [original[0], *original[1:3], original[4]] == ["50.0.2", *common]
    assert shaded[3] == f"{new}.hazmat.bindings._rust.openssl.ec"
    assert original[3] == "cryptography.hazmat.bindings._rust.openssl.ec"


def test_shaded_cryptography_alone_loads_nothing_of_the_original(
    cryptography_env: tuple[Venv, str]
) -> None:
    env, new = cryptography_env
    data = env.json(
        "import json, sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.partition('.')[0] == 'cryptography':\n"
        "            raise ImportError('original imported: ' + name)\n"
        "sys.meta_path.insert(0, Block())\n"
        f"import {new} as c\nout = {{}}\n" + WORK.replace("\n    ", "\n")
        + "print(json.dumps(out))"
    )
    assert isinstance(data, dict) and data[new][:3] == ["49.0.0", "hi", "ca978112"]


@pytest.fixture(scope="module")
def pydantic_env(tmp_path_factory: pytest.TempPathFactory) -> tuple[Venv, str, str]:
    folder = wheels("pydantic==2.13.5", "pydantic-core==2.46.5", "pydantic==2.14.4",
                    "pydantic-core==2.50.5", "annotated-types==0.7.0",
                    "typing-inspection==0.4.5", "typing-extensions==4.16.0")
    env, mapping = shaded_beside(
        tmp_path_factory.mktemp("pydantic"), folder, ["pydantic-2.13.5", "pydantic_core-2.46.5"],
        "pydantic==2.14.4", ["pydantic-2.14.4", "pydantic_core-2.50.5", "annotated_types-0.7.0",
                             "typing_inspection-0.4.5", "typing_extensions-4.16.0"])
    return env, mapping["pydantic"], mapping["pydantic_core"]


def test_pydantic_and_its_rust_core_beside_the_next_pydantic(
    pydantic_env: tuple[Venv, str, str]
) -> None:
    """pydantic-core's Rust code imports ``pydantic_core`` at run time from a literal packed
    between others (``...typepydantic_coreauto_collapse...``, stored as pointer and
    length), and pydantic's lazy attributes come from a lookup table of bare names
    (``"ValidationError": ("pydantic_core", ".")``): both must reach the shaded core."""
    env, new, core = pydantic_env
    data = env.json(
        f"import json, sys\nfrom datetime import datetime\n{CROSSED}\nout = {{}}\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.partition('.')[0] in ('pydantic', 'pydantic_core'):\n"
        "            raise ImportError('original imported: ' + name)\n"
        "sys.meta_path.insert(0, Block())\n"
        f"import {new} as p\n"
        "class M(p.BaseModel):\n"
        "    x: int\n"
        "    when: datetime\n"
        "    url: p.HttpUrl\n"
        "m = M(x='3', when='2020-01-01T00:00:00', url='https://x.org')\n"
        "try:\n"
        "    M(x='no', when='x', url='y')\n"
        "except p.ValidationError as exc:\n"
        "    errors = [e['type'] for e in exc.errors()]\n"
        "    raised = type(exc).__module__\n"
        "out['shaded'] = [p.VERSION, m.model_dump_json(), errors, raised,\n"
        "    p.TypeAdapter(list[int]).validate_python(['1', 2])]\n"
        "sys.meta_path.pop(0)\n"
        "import pydantic\n"
        "class N(pydantic.BaseModel):\n"
        "    x: int\n"
        "out['original'] = [pydantic.VERSION, N(x='4').model_dump_json()]\n"
        f"out['crossed'] = crossed({new!r}, 'pydantic') + crossed({core!r}, 'pydantic_core')\n"
        "print(json.dumps(out))"
    )
    assert data == {
        "shaded": ["2.13.5", '{"x":3,"when":"2020-01-01T00:00:00","url":"https://x.org/"}',
                   ["int_parsing", "datetime_from_date_parsing", "url_parsing"],
                   f"{core}._pydantic_core", [1, 2]],
        "original": ["2.14.4", '{"x":4}'],
        "crossed": [],
    }
