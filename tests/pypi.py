"""Real PyPI distributions for integration tests, pinned by version and sha256, cached on disk."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.utils import parse_wheel_filename

CACHE = Path(__file__).resolve().parent.parent / ".cache" / "pypi"

#: requirement -> sha256 of every file pip may pick (a wheel, or an sdist that is built).
PINS: dict[str, tuple[str, ...]] = {
    "flask==0.12.4": ("6c02dbaa5a9ef790d8219bdced392e2d549c10cd5a5ba4b6aa65126b2271af29",),
    "werkzeug==0.16.1": ("1e0dedc2acb1f46827daa2e399c1485c8fa17c0d8e70b6b875b4e7f54bf408d2",),
    "jinja2==2.11.3": ("03e47ad063331dd6a3f04a43eddca8a966a26ba0c5b7207a9a9e4e08f1b29419",),
    # No wheel for CPython 3.11: the sdist is built, as `wheelshade shade` would.
    "markupsafe==2.0.1": ("594c67807fb16238b30c44bdf74f36c02cdf22d1c8cda91ef8a0ed8dabf5620a",),
    "itsdangerous==1.1.0": ("b12271b2047cb23eeb98c8b5622e2e5c5e9abd9784a153e9d8ef9cb4dd09d749",),
    "flask==3.1.3": ("f4bcbefc124291925f1a26446da31a5178f9483862233b23c0c96a20701f670c",),
    "werkzeug==3.1.3": ("54b78bf3716d19a65be4fceccc0d1d7b89e608834989dfae50ea87564639213e",),
    "jinja2==3.1.6": ("85ece4451f492d0c13c5dd7c13a64681a86afae63a5f347908daf103ce6d2f67",),
    "markupsafe==3.0.3": (
        "0bf2a864d67e76e5c9a34dc26ec616a66b9888e25e7b9460e1c76d3293bd9dbf",  # cp311 manylinux
        "722695808f4b6457b320fdc131280796bdceb04ab50fe1795cd540799ebe1698",  # sdist elsewhere
        "133a43e73a802c5562be9bbcd03d090aa5a1fe899db609c29e8c8d815c5f6de6",  # cp313 aarch64
        "de8a88e63464af587c950061a5e6a67d3632e36df62b986892331d4620a35c01",  # cp311 win_amd64
        "9a1abfdc021a164803f4d485104931fb8f8c1efd55bc6b748d2f5774e78b62c5",  # cp313 win_amd64
    ),
    # A small C extension for Linux aarch64 (run under qemu, see tests/aarch64.py).
    "markupsafe==3.0.2": (
        "569511d3b58c8791ab4c2e1285575265991e6d8f8700c7be0e88f86cb0672094",
        "a123e330ef0853c6e822384873bef7507557d8e4a082961e1defa947aa59ba84",  # cp311 manylinux
        "70a87b411535ccad5ef2f1df5136506a10775d267e197e4cf531ced10537bd6b",  # cp311 win_amd64
        "e6a2a455bd412959b57a172ce6328d2dd1f01cb2135efda2e4576e8a23fa3b0f",  # cp313 win_amd64
        "93335ca3812df2f366e80509ae119189886b0f3c2b81325d39efdb84a1e2ae93",  # cp311 macOS arm64
        "9025b4018f3a1314059769c7bf15441064b2207cb3f065e6ea1e7359cb46db9d",  # cp311 universal2
        "f8b3d067f2e40fe93e1ccdd6b2e1d16c43140e76f02fb1319a05cf2b79d99430",  # cp313 macOS arm64
        "ba9527cdd4c926ed0760bc301f6728ef34d841f405abf9d4f959c478421e4efd",  # cp313 universal2
        "15ab75ef81add55874e7ab7055e9c397312385bd9ced94920f2802310c930396",  # cp313 manylinux
        "0bff5e0ae4ef2e1ae4fdf2dfd5b76c75e5c2fa4132d05fc1b0dabcd20c7e28c4",  # cp311 musllinux
    ),
    # macOS builds beside Linux ones of the same release (tests/test_macho.py): a C
    # extension (thin x86_64, rebase opcodes), a Cython 3.0 one, a Rust one.
    "markupsafe==2.1.5": (
        "3c6b973f22eb18a789b1460b4b91bf04ae3f0c4234a0a6aa6b0a92f6f7b951d4",  # cp312 macOS x86_64
        "f5dfb42c4604dddc8e4305050aa6deb084540643ed5804d7455b5df8fe16f5e5",  # cp312 manylinux
    ),
    "msgpack==1.1.0": (
        "4a1964df7b81285d00a84da4e70cb1383f2e665e0f1f2a7027e683956d04b734",  # cp313 macOS arm64
        "0f92a83b84e7c0749e3f12821949d79485971f087604178026085f60ce109330",  # cp313 macOS x86_64
        "071603e2f0771c45ad9bc65719291c568d4edf120b44eb36324dcb02a13bfddf",  # cp313 universal2
        "0907e1a7119b337971a689153665764adc34e89175f9a34793307d9def08e6ca",  # cp313 manylinux
        "59caf6a4ed0d164055ccff8fe31eddc0ebc07cf7326a2aaa0dbf7a4001cd823e",  # cp313 aarch64
        "bce7d9e614a04d0883af0b3d4d501171fbfca038f12c77fa838d9f198147a23f",  # cp313 win_amd64
    ),
    # delocated: its module loads libpq & co. from psycopg2/.dylibs by @loader_path
    "psycopg2-binary==2.9.13": (
        "f818161d2302b3b3e9c75d5a1d0a5c5679e92e45cfec6432b9d5432dde5ff1f1",  # cp313 macOS arm64
    ),
    "rpds-py==0.22.3": (
        "6dd9412824c4ce1aca56c47b0991e65bebb7ac3f4edccfd3f156150c96a7bf25",  # cp313 macOS arm64
        "009de23c9c9ee54bf11303a966edf4d9087cd43a6003672e6aa7def643d06518",  # cp313 manylinux
    ),
    "itsdangerous==2.2.0": ("c6242fc49e35958c8b15141343aa660db5fc54d4f13a1db01a3f5891b98700ef",),
    "click==8.1.8": ("63c132bbbed01578a06712a2d1f497bb62d9c1c0d329b7903a866228027263b2",),
    "blinker==1.9.0": ("ba0efaa9080b619ff2f3459d1d500c57bddea4a6b424b60a91141db6fd2f08bc",),
    "jsonschema==3.2.0": ("4e5b3cf8216f577bee9ce139cbe72eca3ea4f292ec60928ff24758ce626cd163",),
    "attrs==25.3.0": ("427318ce031701fea540783410126f03899a97ffc6f61596ad581ac2e40e3bc3",),
    "pyrsistent==0.20.0": (
        "cae40a9e3ce178415040a0383f00e8d68b569e97f31928a3a8ad37e3fde6df6a",  # cp311 manylinux
        "4c48f78f62ab596c679086084d0dd13254ae4f3d6c72a83ffdf5ebdef8f265a4",  # sdist elsewhere
    ),
    "six==1.17.0": ("4721f391ed90541fddacab5acf947aa0d3dc7d27b2e1e8eda2be8970586c3274",),
    # cp311 manylinux x86_64 wheels (the machine this project targets).
    "ujson==5.9.0": (
        "8ba7cac47dd65ff88571eceeff48bf30ed5eb9c67b34b88cb22869b7aa19600d",
        "7309d063cd392811acc49b5016728a5e1b46ab9907d321ebbe1c2156bc3c0b99",  # cp311 win_amd64
    ),
    "ujson==5.10.0": (
        "129e39af3a6d85b9c26d5577169c21d53821d8cf68e079060602e861c6e5da1b",
        "f00ea7e00447918ee0eff2422c4add4c5752b1b60e88fcb3c067d4a21049a720",  # cp311 win_amd64
    ),
    # What `python3.11 -m venv` brings; older than the pip wheelshade needs.
    "pip==23.2.1": ("7ccf472345f20d35bdc9d1841ff5f313260c2c33fe417f48c30ac46cccabf5be",),
    "setuptools==80.9.0": ("062d34222ad13e0cc312a4c02d73f059e86a4acbfbdea8f8f76b28c99f306922",),
    # numpy beside numpy: cp311 manylinux x86_64 wheels (2.3.5's is manylinux_2_27).
    "numpy==1.26.4": ("666dbfb6ec68962c033a450943ded891bed2d54e6755e35e5835d63f4f6931d5",),
    "numpy==2.3.5": (
        "8cba086a43d54ca804ce711b2a940b16e452807acebe7852ff327f1ecd49b0d4",
        "9c75442b2209b8470d6d5d8b1c25714270686f14c749028d2199c54e29f20b4d",  # cp313 aarch64
    ),
    # Cython-compiled (PyYAML 6.0.1: Cython 0.29; 6.0.3: 3.1) cp311 manylinux x86_64 wheels.
    "pyyaml==6.0.1": ("d2b04aac4d386b172d5b9692e2d2da8de7bfb6c387fa4f801fbf6fb2e6ba4673",),
    "pyyaml==6.0.3": (
        "b8bb0864c5a28024fac8a632c443c87c5aa6f215c0b126c449ae1a150412f31d",
        "79005a0d97d5ddabfeeea4cf676af11e647e41d81c9a7722a193022accdb6b7c",  # cp313 win_amd64
    ),
    # Cython 3.0 modules whose Windows builds were refused before PE reference analysis
    # (cp313: Linux x86-64 and Windows amd64 of one version, and the next for Windows).
    "pyyaml==6.0.2": (
        "70b189594dbe54f75ab3a1acec5f1e3faa7e8cf2f1e08d9b561cb41b845f69d5",  # manylinux
        "8388ee1976c416731879ac16da0aff3f63b286ffdd57cdeb95f3f2e085687563",  # win_amd64
    ),
    "msgpack==1.1.1": ("6d489fba546295983abd142812bda76b57e33d0b9f5d5b71c09a583285506f69",),
    # Grafted libraries (pillow.libs), shaded with readable names.
    "pillow==12.3.0": ("23d27a3e0307ec2244cc51e7287b919aa68d097504ebe19df4e76a98a3eea5bd",),
    "pillow==13.0.0": ("a625df9a2a5597fa5e5266e01aefc82604bb85d291e3547981e863560d75da6c",),
    # pandas 1.5.3 + numpy 1.26.4 shaded together beside pandas 3 + numpy 2.
    "pandas==1.5.3": ("5f2b952406a1588ad4cad5b3f55f520e82e902388a6d5a4a91baa8d38d23c7f6",),
    "pandas==3.0.6": ("47121f9571503f724c9b93e297ab6254ac99c77adf5e9ed085ea419fd585c258",),
    "python-dateutil==3.0.0": (
        "3c79630202e4152c6add678446984236efe4f57e84d8e892aab0637bab82e9fd",
    ),
    "pytz==2026.6": ("7fed3fee8fd6bd4a2b7b75a8d56021d0624127bf69bd5691f115db929ac570b3",),
    # Packed Cython string tables (cp311 manylinux x86_64): zlib (numpy 2.3, yarl), LZSS
    # (SQLAlchemy 2.0.58, Cython 3.3), each beside a newer release, and their dependencies.
    "numpy==2.4.6": (
        "89cd468399cfd2504718f0ba50e410dca55a170b61a02ad92bb18c8a65186e93",
        "72fbe16c6fac95aedf5937fa873445cec2110be35d8a4e9433d7501fd98dae6b",  # cp313 aarch64
    ),
    "yarl==1.24.5": ("570fec8fbd22b032733625f03f10b7ff023bc399213db15e72a7acaef28c2f4e",),
    "yarl==1.25.1": ("d5add7b4ca7afeea91d52e4d4e4db3b1fe9885b71f07054560d8c4296b7441a2",),
    "multidict==7.2.1": ("3b7542fad2706595c1b1853b46f2c3c4ae5cc5a6252b7225f294d607a29e1bdf",),
    "idna==3.20": ("ab7ae7122974553370f0bdb919e1a960b2cd1bc1ef0276416d896db81c14582c",),
    "propcache==0.5.4": ("6e9368e87a3efc285e559131092c5db643eb8e56de4ee42064d5baec22ef2bb5",),
    "sqlalchemy==2.0.58": (
        "3be707b48a7aa68f987ed82b219dff32de67677402a0c05356a631ec0ed86e4d",
        "950220a3e9ff4645e27b98a329c2513a2232803e16c11d751efe152925c62511",  # cp313 aarch64
        "4a57e2c3251c9888957138dadda6d51e54b150d549e97410b0b4df49accefe07",  # cp313 macOS arm64
        "9d73d70d1ad20f54064c6f0473d365c850b5abe51bce4846656799b9a7759064",  # cp311 musllinux
    ),
    "sqlalchemy==2.1.9": (
        "3a24b459e52b3ac138f6a05e99a4bd0589443a1ae18041a59c1cfdee12134a2b",
        "3c0b5ae779051e98a1d1b614fa8f73c973f7ce65ad6ea2411b916e304da02652",  # cp313 aarch64
    ),
    "typing-extensions==4.16.0": (
        "481caa481374e813c1b176ada14e97f1f67a4539ce9cfeb3f350d78d6370c2e8",
    ),
    "greenlet==3.5.6": (
        "1c20ea32a73d17b9b60e3371240e17b0068120c98a5ec01a224a7dd8c89733ba",
        "c75116c9de79949de23006e2d9b35ee82874c594fcf5c0311b439acaa14b8441",  # cp313 aarch64
    ),
    # Cython 3 with a merged tail (".google_grpc" / "grpc") used both ways (cp313 aarch64),
    # and channel-argument keys named after the package in its C core.
    "grpcio==1.84.2": (
        "69002b796ff0fd09e9414eb9cbf43323ae42306e21634cc882919a5d9eb1658b",
        "7a09b30471f8ce0f7d0ece8c7f88b80e13b455111c03d88cba6c017fd73ac516",  # cp311 manylinux
    ),
    "grpcio==1.85.3": (
        "f2948333a1f462c0e559b5ea436655ed36822fa448f5713d6de2d483bed6e03f",  # cp311 manylinux
        "399fc184b4d2dd0b014b4b880a5b1ecc99383b610dbb270acb43d1b23e1e8b9c",  # cp313 aarch64
    ),
    "greenlet==3.4.0": (
        "c660bce1940a1acae5f51f0a064f1bc785d07ea16efcb4bc708090afc4d69e83",
        "5566e4e2cd7a880e8c27618e3eab20f3494452d12fd5129edef7b2f7aa9a36d1",  # cp313 aarch64
        "43748988b097f9c6f09364f260741aa73c80747f63389824435c7a50bfdfd5c1",  # cp313 universal2
        "f82cb6cddc27dd81c96b1506f4aa7def15070c3b2a67d4e46fd19016aacce6cf",  # cp313 manylinux
        "956215d5e355fffa7c021d168728321fd4d31fd730ac609b1653b450f6a4bc71",  # cp311 musllinux
    ),
    # A Rust (PyO3) extension beside another release: cryptography, with cffi for both.
    "cryptography==49.0.0": (
        "2afe9051da7ae7bd5905da5a949280c7d2bb75682e188f650a9d0f2756b834c6",
        "53ecee2e23f7169b6117e99fc8a944e5e50f79e69758a83b52a00cb98ab2b2d2",  # abi3 aarch64
    ),
    "cryptography==50.0.2": ("4061c0079120205fb760c58acab6443e217307dcf05e3702cf970e0689972856",),
    "cffi==2.0.0": ("8941aaadaf67246224cee8c3803777eed332a19d909b47e29c9842ef1e79ac26",),
    "pycparser==3.11": ("51d5a8ba2be0bbe440b99d2112604c95bbbc3c2748a64260186c541e1729cd80",),
    # pydantic with its Rust core, shaded together beside the next release.
    "pydantic==2.13.5": ("346a034f080da3755d8e9cb5e00e8b07de1d39e4f6e2c87d8ab7cafa0b269a73",),
    "pydantic-core==2.46.5": (
        "49776eab08766a08dfff7012f8b422dcd7e25e43b316eedf0477c24fcfa84b7c",
        "193375f3548919d3f0b60936ca113ada3e38f264f91b9b8e0508efaad57be931",  # cp313 aarch64
        "8feeac04b5794e513e710af2f9c87d49f31a6dc47967bb264a1fed61a8989bec",  # cp311 musllinux
    ),
    "pydantic==2.14.4": ("653a2ad9f6d8858529c77c72717d0ea991d6c6837fe683246b2f4b2bbfc3fadc",),
    "pydantic-core==2.50.5": (
        "488319076ec92908b91fc6265ce761f1d78748f69f85518564fd16bf333e1b70",
        "8bbe282e79dc71b24ba7be284eacf27c8ddff8f26911e2030a0dd123c6aed326",  # cp313 aarch64
    ),
    "annotated-types==0.7.0": (
        "1f02e8b43a8fbbc3f3e0d4f0f4bfc8131bcb4eebe8849b8e5c773f3a1c582a53",
    ),
    "typing-inspection==0.4.5": (
        "bc210535442b39e1bf2805e0c7a17dfd6a4ace760c84c7f7d16245d23a6b1c39",
    ),
    "tzdata==2026.6": ("0a10eec6e13ef16b627fabed9a5f2ba61a62b1c67f327305f4e7e412a70b4aec",),
    # The 2023 scientific stack (with numpy 1.26.4) shaded together beside today's releases
    # (with numpy 2.4.6), cp311 manylinux x86_64; pytest and its deps run their own tests.
    "scikit-learn==1.3.2": (
        "fc4144a5004a676d5022b798d9e573b05139e77f271253a4703eed295bde0433",
    ),
    "scipy==1.11.4": ("530f9ad26440e85766509dbf78edcfe13ffd0ab7fec2560ee5c36ff74d6269ff",),
    "scikit-learn==1.7.2": (
        "89877e19a80c7b11a2891a27c21c4894fb18e2c2e077815bcade10d34287b20d",
    ),
    "scipy==1.16.3": ("0151a0749efeaaab78711c78422d413c583b8cdd2011a3c1d6c794938ee9fdb2",),
    "joblib==1.5.2": ("4e1f0bdbb987e6d843c70cf43714cb276623def372df3c22fe5266b2670bc241",),
    "threadpoolctl==3.6.0": (
        "43a0b8fd5a2928500110039e43a5eed8480b918967083ea48dc3ab9f13c4a7fb",
    ),
    "pytest==9.2.0": ("07acdcf88ec174f907dc01af70bf52d49b014bbab03faeeade31c96b18c2e588",),
    "pluggy==1.7.0": ("7dd7b0d8832ba3cb632c306926ded123429211b83641b35dc5c41ad2d34f9bec",),
    "iniconfig==2.3.1": ("9121e2c1fdb355232495be3194c8dfe87ccc2d5dee45947b78e68f499790d7a7",),
    "packaging==26.4": ("81383611a09c1bc0b08b76e0fd5829d7c6824c65b27a6aee339da133f4233ea2",),
    "pygments==2.21.0": ("2363c69b61c4a97c838da3b130dcd6468f4848992b21a82f2a63ec34377137d9",),
}

_UNREACHABLE = re.compile(
    r"NewConnectionError|Max retries exceeded|Temporary failure in name resolution|"
    r"Network is unreachable|Connection refused|ConnectTimeout|ReadTimeout",
)


def wheels(*reqs: str) -> Path:
    """A folder holding a wheel for each pinned requirement (downloaded or built once).

    Skips the calling test, saying why, only when the package index cannot be reached;
    any other failure (a hash mismatch, say) fails the test.
    """
    folder = CACHE / "wheels"
    folder.mkdir(parents=True, exist_ok=True)
    have = {_pin_of(p) for p in folder.glob("*.whl")}
    missing = [r for r in reqs if r not in have]
    if not missing:
        return folder
    # One pip run per pin: pip refuses to resolve two versions of one name together.
    for req in missing:
        req_file = CACHE / "requirements.txt"
        req_file.write_text(f"{req} " + " ".join(f"--hash=sha256:{h}" for h in PINS[req]) + "\n")
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "wheel",
                "--quiet",
                "--disable-pip-version-check",
                "--no-deps",
                "--require-hashes",
                "-r",
                str(req_file),
                "-w",
                str(folder),
            ],
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            if _UNREACHABLE.search(proc.stderr):
                pytest.skip(
                    f"package index unreachable, cannot fetch {req}: "
                    f"{proc.stderr.strip().splitlines()[-1]}"
                )
            raise AssertionError(f"fetching {req} failed:\n{proc.stderr}")
    return folder


def platform_wheels(platforms: tuple[str, ...], python: str, *reqs: str) -> Path:
    """Like wheels, for another platform: ``pip download`` of the pinned binary wheels for
    any of ``platforms`` (``manylinux2014_aarch64``, ...) and CPython ``python`` (``3.13``)."""
    folder = CACHE / f"wheels-{platforms[-1]}-cp{python.replace('.', '')}"
    platform = " or ".join(platforms)
    folder.mkdir(parents=True, exist_ok=True)
    have = {_pin_of(p) for p in folder.glob("*.whl")}
    for req in (r for r in reqs if r not in have):
        req_file = folder / "requirements.txt"
        req_file.write_text(f"{req} " + " ".join(f"--hash=sha256:{h}" for h in PINS[req]) + "\n")
        proc = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
             "--no-deps", "--only-binary=:all:",
             *(arg for p in platforms for arg in ("--platform", p)), "--python-version", python,
             "--implementation", "cp", "--require-hashes", "-r", str(req_file), "-d", str(folder)],
            capture_output=True, text=True,
        )
        if proc.returncode != 0:
            if _UNREACHABLE.search(proc.stderr):
                pytest.skip(f"package index unreachable, cannot fetch {req} for {platform}: "
                            f"{proc.stderr.strip().splitlines()[-1]}")
            raise AssertionError(f"fetching {req} for {platform} failed:\n{proc.stderr}")
    return folder


def _pin_of(path: Path) -> str:
    name, version, _, _ = parse_wheel_filename(path.name)
    return f"{name}=={version}"
