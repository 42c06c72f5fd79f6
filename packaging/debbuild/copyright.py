"""debian/copyright (machine-readable format) for a package and the code it vendors."""

from __future__ import annotations

from debbuild.spec import PackageSpec
from debbuild.vendor import VendoredDist

_HEADER = """Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: tvpay
Upstream-Contact: TVPay Packaging <packaging@tvpay.cn>

Files: *
Copyright: 2025 TVPay
License: proprietary
 All rights reserved. Distributed to set-top box vendors and operators under
 the terms of their TVPay agreement.
"""


def copyright_text(spec: PackageSpec, vendored: tuple[VendoredDist, ...]) -> str:
    """The copyright file; each vendored distribution gets its own paragraph and reason."""
    paragraphs = [_HEADER]
    vendor_dir = f"{spec.python.dir.lstrip('/')}/vendor"
    for dist in vendored:
        top = dist.name.replace("-", "_").lower()
        paragraphs.append(
            f"Files: {vendor_dir}/{top}* {vendor_dir}/{dist.name}*\n"
            f"Copyright: the {dist.name} authors\n"
            f"License: {dist.license}\n"
            f" {dist.name} {dist.version}, vendored from the build environment: {dist.reason}.\n"
            f" The license text is in the distribution's dist-info directory.\n"
        )
    return "\n".join(paragraphs)
