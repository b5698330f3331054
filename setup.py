"""Packaging for thinkfast. Everything it needs (name, version, requirements, entry points) is read
from settings.ini, the file nbdev 2.4 keeps, so there is one source of truth for both tools."""
from configparser import ConfigParser
from pathlib import Path

import setuptools

here = Path(__file__).parent
config = ConfigParser(delimiters=["="])
config.read(here / "settings.ini", encoding="utf-8")
cfg = config["DEFAULT"]

for key in ("lib_name", "version", "description", "min_python", "author", "license"):
    if not cfg.get(key):
        raise SystemExit(f"settings.ini: the required key '{key}' is missing or empty")


def reqs(key):
    "Requirements are whitespace-separated in settings.ini (no spaces inside one requirement)."
    return cfg.get(key, "").split()


licenses = {"apache2": ("Apache Software License 2.0", "OSI Approved :: Apache Software License")}
lic_name, lic_classifier = licenses[cfg["license"]]
statuses = ["1 - Planning", "2 - Pre-Alpha", "3 - Alpha", "4 - Beta", "5 - Production/Stable"]
readme = here / "README.md"

setuptools.setup(
    name=cfg["lib_name"],
    version=cfg["version"],
    description=cfg["description"],
    long_description=readme.read_text(encoding="utf-8") if readme.exists() else "",
    long_description_content_type="text/markdown",
    author=cfg["author"],
    author_email=cfg["author_email"],
    license=lic_name,
    url=cfg["git_url"],
    keywords=cfg["keywords"].split(),
    classifiers=[
        f"Development Status :: {statuses[int(cfg['status']) - 1]}",
        f"Intended Audience :: {cfg['audience']}",
        f"License :: {lic_classifier}",
        f"Natural Language :: {cfg['language']}",
        "Programming Language :: Python :: 3",
    ],
    python_requires=f">={cfg['min_python']}",
    packages=setuptools.find_packages(include=[cfg["lib_name"], f"{cfg['lib_name']}.*"]),
    include_package_data=True,
    package_data={cfg["lib_name"]: ["data/README.md", "data/*/*.jsonl", "data/*/LICENSE"]},   # the shipped benchmarks
    install_requires=reqs("requirements"),
    extras_require={"dev": reqs("dev_requirements"), "gpu": reqs("gpu_requirements")},
    entry_points={
        "console_scripts": cfg.get("console_scripts", "").split(),
        "nbdev": [f"{cfg['lib_name']}={cfg['lib_name']}._modidx:d"],
    },
    zip_safe=False,
)
