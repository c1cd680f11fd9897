"""A wheel carries the built JupyterLab extension in the place JupyterLab
finds installed extensions (share/jupyter/labextensions/guild-jupyter); an
editable install does not, because scripts/build-labextension.sh links that
place to the build in the checkout instead (as `jupyter labextension
develop` does), and installed copies would go stale at the next build."""

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

LABEXTENSION_BUILD = "guild_jupyter/labextension"
LABEXTENSION_SHARE = "share/jupyter/labextensions/guild-jupyter"


class LabExtensionSharedData(BuildHookInterface):
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict) -> None:
        if self.target_name == "wheel" and version == "standard":
            build_data["shared_data"][LABEXTENSION_BUILD] = LABEXTENSION_SHARE
