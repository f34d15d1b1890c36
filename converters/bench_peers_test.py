#!/usr/bin/env python3
"""Self-check of bench_peers.py's case selection and table, on made-up results (no framework runs).

    ../venv/bin/python converters/bench_peers_test.py
"""

import argparse
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_peers  # noqa: E402
from bench_peers import FRAMEWORKS, NOT_RUN, markdown_table, runs_case, table_rows  # noqa: E402


def result(framework, model, case, images_per_s, peak_rss_mb=100.0):
    return {"framework": framework, "model": model, "case": case,
            "images_per_s": images_per_s, "peak_rss_mb": peak_rss_mb}


class CaseSelection(unittest.TestCase):
    def test_inference_only_peers_have_no_training(self):
        for fw in ("onnxruntime", "openvino"):
            self.assertTrue(runs_case(fw, "resnet50", "infer"))
            self.assertTrue(runs_case(fw, "resnet50", "infer_int8"))
            self.assertFalse(runs_case(fw, "resnet50", "train"))
        self.assertTrue(runs_case("openvino", "resnet50", "infer_f32"))
        self.assertFalse(runs_case("onnxruntime", "resnet50", "infer_f32"))
        self.assertFalse(runs_case("torch_bf16", "resnet50", "infer_int8"))

    def test_keras_only_model_runs_on_keras_alone(self):
        self.assertTrue(runs_case("keras", "xception", "train"))
        for fw in ("torch", "torch_bf16", "onnxruntime", "openvino"):
            self.assertFalse(runs_case(fw, "xception", "infer"))


class Table(unittest.TestCase):
    def setUp(self):
        self.args = argparse.Namespace(models=["resnet50"], cases=bench_peers.CASES, frameworks=FRAMEWORKS)
        self.results = {(r["framework"], r["model"], r["case"]): r for r in [
            result("zoo", "resnet50", "infer", 300.0),
            result("torch", "resnet50", "infer", 150.0),
            result("openvino", "resnet50", "infer", 600.0),
            result("onnxruntime", "resnet50", "infer_int8", 800.0),
            {"framework": "openvino", "model": "resnet50", "case": "infer_int8", "failed": True, "error": "x"},
        ]}

    def test_faster_peer_is_the_fastest_of_all_that_ran(self):
        rows = {row["case"]: row for row in table_rows(self.args, self.results)}
        self.assertEqual(set(rows), {"infer", "infer_int8"})   # rows nothing ran are left out
        self.assertEqual(rows["infer"]["faster_peer"], "openvino")
        self.assertAlmostEqual(rows["infer"]["zoo_vs_faster_peer"], 0.5)
        self.assertAlmostEqual(rows["infer"]["zoo_vs_torch"], 2.0)
        self.assertIsNone(rows["infer_int8"]["zoo_vs_faster_peer"])
        # The keys of the two-framework table are still there.
        for key in ("zoo_img_s", "torch_img_s", "keras_img_s", "zoo_mb", "torch_mb", "keras_mb"):
            self.assertIn(key, rows["infer"])

    def test_columns_follow_the_frameworks_that_ran(self):
        lines = markdown_table(table_rows(self.args, self.results), ["torch", "openvino"])
        header = [cell.strip() for cell in lines[0].strip("|").split("|")]
        self.assertEqual(header, ["model", "case", "zoo img/s", "PyTorch img/s", "OpenVINO img/s", "zoo/PyTorch",
                                  "zoo/faster peer", "zoo MB", "PyTorch MB", "OpenVINO MB"])
        int8 = [cell.strip() for cell in lines[3].strip("|").split("|")]
        self.assertEqual(int8[:5], ["resnet50", "infer_int8", NOT_RUN, NOT_RUN, "failed"])


if __name__ == "__main__":
    unittest.main()
