"""Only for `cdp_harness.pth` (see harness/locust_help.py): setuptools has no setting that puts a
file next to the packages in site-packages, in normal and editable installs alike."""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

PTH = "cdp_harness.pth"


class BuildWithPth(build_py):
    def run(self) -> None:
        super().run()
        self.copy_file(PTH, str(Path(self.build_lib) / PTH), preserve_mode=False)
        if getattr(self, "editable_mode", False):
            # editable_wheel points `install`'s lib at the unpacked wheel: files there are installed as is.
            wheel_root = self.distribution.get_command_obj("install").install_lib
            if wheel_root:
                self.copy_file(PTH, str(Path(wheel_root) / PTH), preserve_mode=False)

    def get_outputs(self, include_bytecode: bool = True) -> list[str]:
        return [*super().get_outputs(include_bytecode), str(Path(self.build_lib) / PTH)]

    def get_output_mapping(self) -> dict[str, str]:
        return {**super().get_output_mapping(), str(Path(self.build_lib) / PTH): PTH}


setup(cmdclass={"build_py": BuildWithPth})
