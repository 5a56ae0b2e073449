"""LuPRRT library module (hidden): the ``luprrt`` core, the synthetic sample patient, shared settings.

Slicer puts this module's folder on the Python path, which makes ``import luprrt`` work
for LobeQuant, LesionDosimetry and ResponseAssess. The module registers the synthetic
sample patient with the Sample Data module; the patient is generated locally by
:mod:`luprrt.phantom` (nothing is downloaded) and cached.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import math
import os
import tempfile
from pathlib import Path
from typing import ClassVar

import slicer
from slicer.i18n import tr as _
from slicer.i18n import translate
from slicer.ScriptedLoadableModule import (
    ScriptedLoadableModule,
    ScriptedLoadableModuleLogic,
    ScriptedLoadableModuleTest,
)

SAMPLE_CATEGORY = "LuPRRT"
SAMPLE_NAME = "LuPRRTSyntheticPatient"
# The sample is made on this machine; the pseudo-URI only names it for the Sample Data module.
SAMPLE_URI = "luprrt-phantom://synthetic-patient"
SAMPLE_HOURS_POST_INJECTION = 24.0  # the study's primary end point: T/N at 24 h after cycle 1
# Tables written by `luprrt cohort` (luprrt.workflows.cohort_analysis), loaded by loadCohortResults.
COHORT_TABLES = ("lesion_table", "patient_table", "primary_ia_iv", "ia_iv_by_cycle", "uptake_by_cycle",
                 "lesion_dose_by_lobe", "lesion_auc", "lesion_gee_effects")
REQUIREMENTS_PATH = os.path.join(os.path.dirname(__file__), "Resources", "requirements.txt")
# Distribution name -> import name of the packages in REQUIREMENTS_PATH.
_IMPORT_NAMES = {"pynrrd": "nrrd", "icrp107-database": "icrp107_database"}


def ensurePythonRequirements() -> None:
    """Install the Python packages of ``Resources/requirements.txt`` that are missing, on first use.

    Slicer >= 5.12: ``slicer.packaging.pip_ensure`` (checks, asks, installs with progress).
    Slicer 5.10: ask, then ``slicer.util.pip_install``. Nothing happens when all are present.
    """
    with open(REQUIREMENTS_PATH, encoding="utf-8") as handle:
        requirements = [line.strip() for line in handle if line.strip() and not line.startswith("#")]
    names = [requirement.split(">=")[0].split("==")[0].strip() for requirement in requirements]
    missing = [req for req, name in zip(requirements, names, strict=True)
               if importlib.util.find_spec(_IMPORT_NAMES.get(name, name)) is None]
    if not missing:
        return
    packaging = getattr(slicer, "packaging", None)
    if packaging is not None and hasattr(packaging, "pip_ensure"):
        packaging.pip_ensure(missing, requester="LuPRRT")
        return
    if not slicer.util.confirmOkCancelDisplay(
            _("LuPRRT needs these Python packages: {packages}. Install them now?").format(
                packages=", ".join(missing))):
        raise RuntimeError(f"LuPRRT needs the Python packages {missing}; they were not installed")
    slicer.util.pip_install(" ".join(missing))


class LuPRRTExtension(ScriptedLoadableModule):
    """Hidden library module of the LuPRRT extension."""

    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = _("LuPRRT Library")
        self.parent.categories = [f"{translate('qSlicerAbstractCoreModule', 'Nuclear Medicine')}.LuPRRT"]
        self.parent.dependencies = []
        self.parent.contributors = ["LuPRRT Developers (LuPRRT project)"]
        self.parent.hidden = True
        self.parent.helpText = _(
            "Library of the LuPRRT extension: the quantitative core shared by the LobeQuant, "
            "LesionDosimetry and ResponseAssess modules, the synthetic sample patient (Sample Data "
            "module, category LuPRRT) and the extension's settings. It has no panel of its own. "
            'See <a href="https://github.com/luprrt/SlicerLuPRRT">the LuPRRT documentation</a>.')
        self.parent.acknowledgementText = _(
            "LuPRRT supports clinical studies of 177Lu-dotatate peptide receptor radionuclide therapy "
            "of neuroendocrine liver metastases (intra-arterial versus intravenous administration, "
            "predictive imaging of lesion response). It builds on 3D Slicer, SimpleITK, NumPy and SciPy.")
        slicer.app.connect("startupCompleted()", registerSampleData)


def registerSampleData() -> bool:
    """Add the synthetic patient to the Sample Data module; False if that module is absent."""
    if importlib.util.find_spec("SampleData") is None:
        logging.info("Sample Data module not available: LuPRRT sample patient not registered")
        return False
    import SampleData

    icon = os.path.join(os.path.dirname(__file__), "Resources", "Icons", "LuPRRTExtension.png")
    SampleData.SampleDataLogic.registerCustomSampleDataSource(
        category=SAMPLE_CATEGORY, sampleName=SAMPLE_NAME, uris=SAMPLE_URI, fileNames=SAMPLE_NAME,
        nodeNames=None, loadFileType=None, thumbnailFileName=icon, customDownloader=_loadSamplePatient)
    return True


def _loadSamplePatient(source) -> dict:
    """Sample Data's custom downloader: generate (once) and load the synthetic patient.

    A module-level function, not a lambda: Sample Data compares sources by their text, which
    includes the downloader's repr, so registering again (a module reload, the self-test) must
    yield the same text to be recognised as already registered.
    """
    return LuPRRTExtensionLogic().loadSamplePatient()


class LuPRRTSettings:
    """The extension's user settings, typed by their defaults (keys ``LuPRRT/<name>``).

    Example::

        settings = LuPRRTSettings()
        seed = settings.value("SamplePatientSeed")   # int
        settings.setValue("SmallSamplePatient", True)
    """

    DEFAULTS: ClassVar[dict[str, object]] = {
        "SamplePatientSeed": 0,  # seed of the synthetic sample patient
        "SmallSamplePatient": False,  # 4 x 4 x 5 mm CT voxels instead of 2 x 2 x 2.5 mm
        "SampleDataFolder": "",  # where generated sample patients are cached ("" = Slicer's cache)
    }

    def __init__(self, settings=None):
        self._settings = settings if settings is not None else slicer.app.userSettings()

    def _default(self, name: str):
        if name not in self.DEFAULTS:
            raise ValueError(f"unknown LuPRRT setting {name!r}; known: {sorted(self.DEFAULTS)}")
        return self.DEFAULTS[name]

    def value(self, name: str):
        """The stored value of setting ``name`` converted to its default's type, or the default."""
        default = self._default(name)
        raw = self._settings.value(f"LuPRRT/{name}", default)
        if isinstance(default, bool):
            return slicer.util.toBool(raw)
        return type(default)(raw)

    def setValue(self, name: str, value) -> None:
        """Store ``value`` for setting ``name`` (must convert to the default's type)."""
        default = self._default(name)
        if isinstance(default, bool) and not isinstance(value, bool):
            raise ValueError(f"setting {name!r} is a yes/no value, got {value!r}")
        try:
            converted = type(default)(value)
        except (TypeError, ValueError) as error:
            raise ValueError(f"setting {name!r} expects {type(default).__name__}, got {value!r}") from error
        self._settings.setValue(f"LuPRRT/{name}", converted)


class LuPRRTExtensionLogic(ScriptedLoadableModuleLogic):
    """Generates, caches and loads the synthetic sample patient."""

    def sampleFolder(self, seed: int, small: bool) -> Path:
        """Default cache folder of the sample patient with ``seed``."""
        base = LuPRRTSettings().value("SampleDataFolder") or os.path.join(slicer.app.cachePath, "LuPRRT")
        return Path(base) / f"SyntheticPatient-seed{seed}{'-small' if small else ''}"

    def samplePatientFolder(self, seed: int | None = None, folder: str | Path | None = None, progress=None,
                            **patientOptions) -> Path:
        """Folder holding the written synthetic patient, generated there on first use.

        :param seed: patient seed (default: setting ``SamplePatientSeed``).
        :param folder: where the patient is written (default: :meth:`sampleFolder`).
        :param progress: optional callable(fraction, message) while generating.
        :param patientOptions: more arguments of ``luprrt.phantom.make_patient`` (e.g. ``small=True``).
        """
        settings = LuPRRTSettings()
        seed = settings.value("SamplePatientSeed") if seed is None else int(seed)
        patientOptions.setdefault("small", settings.value("SmallSamplePatient"))
        folder = Path(folder) if folder is not None else self.sampleFolder(seed, patientOptions["small"])
        if not (folder / "manifest.json").exists():
            from luprrt.phantom import make_patient, write_patient

            ensurePythonRequirements()  # write_patient writes the .seg.nrrd with pynrrd
            logging.info("Generating LuPRRT synthetic patient (seed %d) in %s", seed, folder)
            write_patient(make_patient(seed, progress=progress, **patientOptions), folder)
        return folder

    def loadSamplePatient(self, seed: int | None = None, folder: str | Path | None = None, progress=None,
                          **patientOptions) -> dict:
        """Generate the sample patient if needed (:meth:`samplePatientFolder`), then load it
        (:meth:`loadPatientFolder`)."""
        return self.loadPatientFolder(self.samplePatientFolder(seed, folder, progress, **patientOptions))

    def loadPatientFolder(self, folder: str | Path) -> dict:
        """Load a written synthetic patient's cycle-1 CT, 24 h SPECT and segmentation into the scene.

        The files are read as a user's data would be: DICOM CT and NM SPECT by
        ``luprrt.io.dicom``, the ``.seg.nrrd`` by Slicer's segmentation reader.

        :return: ``{"ct": node, "spect": node, "segmentation": node}``.
        """
        from luprrt import mrml
        from luprrt.io import read_image

        folder = Path(folder)
        manifest_path = folder / "manifest.json"
        if not manifest_path.exists():
            raise ValueError(f"{folder} holds no synthetic patient (no manifest.json)")
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        visit = manifest["sessions"][0]
        spect = min(visit["spect"],
                    key=lambda s: abs(s["hours_post_injection"] - SAMPLE_HOURS_POST_INJECTION))
        patient = manifest["patient_id"]
        ct_image = read_image(folder / visit["ct"])
        spect_image = read_image(folder / spect["file"])
        spect_name = f"{patient} SPECT C1 {spect['hours_post_injection']:g}h"
        nodes = {
            "ct": mrml.volume_node_from_image(ct_image.image, f"{patient} CT", units=ct_image.units),
            "spect": mrml.volume_node_from_image(spect_image.image, spect_name, units=spect_image.units),
            "segmentation": slicer.util.loadSegmentation(str(folder / visit["segmentation"]),
                                                         {"name": f"{patient} segmentation"}),
        }
        logging.info("Loaded LuPRRT synthetic patient %s from %s", patient, folder)
        return nodes


    def loadCohortResults(self, resultsFolder: str | Path) -> dict:
        """Load the tables of a ``luprrt cohort`` run (its ``--out`` folder) as table nodes.

        Columns whose every value is a number become numeric (int when all are integers, an
        empty cell NaN), others stay text; units come from the column names.

        :return: ``{table name: vtkMRMLTableNode}``, e.g. ``"lesion_table"``, ``"primary_ia_iv"``.
        """
        from luprrt import mrml
        from luprrt.tables import read_rows_csv

        folder = Path(resultsFolder)
        if not (folder / "lesion_table.csv").is_file():
            raise ValueError(f"{folder} holds no lesion_table.csv: give the output folder of "
                             "`luprrt cohort STUDY --out FOLDER`")
        nodes = {}
        for name in COHORT_TABLES:
            path = folder / f"{name}.csv"
            if path.is_file():
                rows = read_rows_csv(path)
                columns = {column: _typedColumn([row[column] for row in rows]) for column in rows[0]}
                nodes[name] = mrml.table_node_from_rows(columns, f"LuPRRT cohort {name}")
        logging.info("Loaded %d LuPRRT cohort tables from %s", len(nodes), folder)
        return nodes


def _isNumber(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _typedColumn(texts: list[str]) -> list:
    """CSV cells of one column as ints, floats (empty -> NaN) or, if any cell is not a number, text."""
    filled = [text for text in texts if text != ""]
    if not all(map(_isNumber, filled)):
        return texts
    if len(filled) == len(texts) and all(text.lstrip("+-").isdigit() for text in texts):
        return [int(text) for text in texts]
    return [float(text) if text != "" else math.nan for text in texts]


class LuPRRTExtensionTest(ScriptedLoadableModuleTest):
    """Self-test: settings, sample registration and the sample patient's round trip into the scene."""

    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        self.setUp()
        self.test_settings_typed_round_trip()
        self.setUp()
        self.test_sample_data_registration()
        self.setUp()
        self.test_sample_patient_generated_cached_and_loaded()
        self.setUp()
        self.test_missing_requirements_are_ensured_through_slicer_packaging()
        self.setUp()
        self.test_cohort_results_load_as_typed_tables()

    def test_settings_typed_round_trip(self):
        settings = LuPRRTSettings()
        original = settings.value("SamplePatientSeed")
        try:
            settings.setValue("SamplePatientSeed", 7)
            self.assertEqual(LuPRRTSettings().value("SamplePatientSeed"), 7)
        finally:
            settings.setValue("SamplePatientSeed", original)
        with self.assertRaisesRegex(ValueError, "unknown LuPRRT setting 'Seed'"):
            settings.value("Seed")
        with self.assertRaisesRegex(ValueError, "'SmallSamplePatient' is a yes/no value"):
            settings.setValue("SmallSamplePatient", "maybe")

    def test_missing_requirements_are_ensured_through_slicer_packaging(self):
        global REQUIREMENTS_PATH
        asked = []

        class Packaging:  # records what Slicer's pip_ensure would be asked to install
            @staticmethod
            def pip_ensure(requirements, requester):
                asked.append((list(requirements), requester))

        original_path, original_packaging = REQUIREMENTS_PATH, getattr(slicer, "packaging", None)
        with tempfile.TemporaryDirectory() as folder:
            REQUIREMENTS_PATH = os.path.join(folder, "requirements.txt")
            with open(REQUIREMENTS_PATH, "w", encoding="utf-8") as handle:
                handle.write("# comment\npynrrd>=1.0\nluprrt-absent-package>=2.1\n")
            slicer.packaging = Packaging
            try:
                ensurePythonRequirements()
            finally:
                REQUIREMENTS_PATH = original_path
                if original_packaging is None:
                    del slicer.packaging
                else:
                    slicer.packaging = original_packaging
        # pynrrd is importable here (as "nrrd"), so only the absent package is asked for.
        self.assertEqual(asked, [(["luprrt-absent-package>=2.1"], "LuPRRT")])
        ensurePythonRequirements()  # the shipped requirements are all present: nothing to do

    def test_cohort_results_load_as_typed_tables(self):
        from luprrt import mrml

        with tempfile.TemporaryDirectory() as folder:
            with open(os.path.join(folder, "lesion_table.csv"), "w", encoding="utf-8") as handle:
                handle.write("patient_id,lesion_id,route,cycle,tn_mean,tumour_dose_gy\n"
                             "P1,L01,IA,1,12.5,30.25\nP1,L02,IV,1,8,\n")
            with open(os.path.join(folder, "primary_ia_iv.csv"), "w", encoding="utf-8") as handle:
                handle.write("cycle,n_patients,ratio_ia_iv\n1,26,1.17\n")
            nodes = LuPRRTExtensionLogic().loadCohortResults(folder)
        self.assertEqual(sorted(nodes), ["lesion_table", "primary_ia_iv"])
        rows = mrml.rows_from_table_node(nodes["lesion_table"])
        self.assertEqual([(r["patient_id"], r["lesion_id"], r["route"], r["cycle"]) for r in rows],
                         [("P1", "L01", "IA", 1), ("P1", "L02", "IV", 1)])
        self.assertEqual([r["tn_mean"] for r in rows], [12.5, 8.0])
        self.assertEqual(rows[0]["tumour_dose_gy"], 30.25)
        self.assertTrue(math.isnan(rows[1]["tumour_dose_gy"]))
        self.assertEqual(nodes["lesion_table"].GetColumnUnitLabel("tumour_dose_gy"), "Gy")
        self.assertEqual(mrml.rows_from_table_node(nodes["primary_ia_iv"]), [
            {"cycle": 1, "n_patients": 26, "ratio_ia_iv": 1.17}])
        with tempfile.TemporaryDirectory() as empty, self.assertRaisesRegex(ValueError, "holds no lesion_table.csv"):
            LuPRRTExtensionLogic().loadCohortResults(empty)

    def test_sample_data_registration(self):
        has_sample_data = importlib.util.find_spec("SampleData") is not None
        self.assertEqual(registerSampleData(), has_sample_data)
        if has_sample_data:
            import SampleData

            sources = SampleData.SampleDataLogic.sampleDataSourcesByCategory(SAMPLE_CATEGORY)
            names = [source.sampleName for source in sources]
            self.assertIn(SAMPLE_NAME, names)

    def test_sample_patient_generated_cached_and_loaded(self):
        import numpy as np
        import SimpleITK as sitk

        from luprrt import mrml
        from luprrt.io import read_image, read_seg_nrrd
        from luprrt.phantom import FIELD_OF_VIEW_MM

        logic = LuPRRTExtensionLogic()
        options = {"small": True, "n_cycles": 1, "hours_post_injection": (24.0,), "followup_weeks": ()}
        with tempfile.TemporaryDirectory() as folder:
            self.assertEqual(logic.samplePatientFolder(seed=3, folder=folder, **options), Path(folder))
            written = os.path.getmtime(os.path.join(folder, "manifest.json"))
            nodes = logic.loadSamplePatient(seed=3, folder=folder, **options)
            self.assertEqual(os.path.getmtime(os.path.join(folder, "manifest.json")), written)  # cache reused
            files_ct = read_image(os.path.join(folder, "ct")).image
            files_spect = read_image(os.path.join(folder, "cycle1", "spect_24h", "spect.dcm")).image
            files_segmentation = read_seg_nrrd(os.path.join(folder, "segmentation.seg.nrrd"))
        self.assertEqual(nodes["ct"].GetName(), "LUPRRT-SYN-0003 CT")
        self.assertEqual(mrml.voxel_units(nodes["ct"]), "HU")
        self.assertEqual(mrml.voxel_units(nodes["spect"]), "Bq/mL")

        ct = mrml.image_from_volume_node(nodes["ct"])
        # Small patient: 4 x 4 x 5 mm voxels over the phantom's 300 x 240 x 200 mm field of view.
        small_voxel_mm = (4.0, 4.0, 5.0)
        expected_size = tuple(round(fov / step)
                              for fov, step in zip(FIELD_OF_VIEW_MM, small_voxel_mm, strict=True))
        self.assertEqual(ct.GetSize(), expected_size)
        for loaded, files in ((ct, files_ct), (mrml.image_from_volume_node(nodes["spect"]), files_spect)):
            np.testing.assert_array_equal(sitk.GetArrayFromImage(loaded), sitk.GetArrayFromImage(files))
            np.testing.assert_allclose(loaded.GetOrigin(), files.GetOrigin(), atol=1e-9)
            np.testing.assert_allclose(loaded.GetSpacing(), files.GetSpacing(), atol=1e-9)
            np.testing.assert_allclose(loaded.GetDirection(), files.GetDirection(), atol=1e-12)

        segmentation = mrml.segmentation_from_segmentation_node(nodes["segmentation"])
        self.assertEqual([s.segment_id for s in segmentation.segments],
                         [s.segment_id for s in files_segmentation.segments])
        roles = {s.tags.role for s in segmentation.segments}
        self.assertTrue({"liver", "lobe", "lesion"} <= roles, roles)
        for segment in files_segmentation.segments:
            loaded = segmentation.segment(segment.segment_id)
            self.assertEqual(loaded.tags, segment.tags)
            np.testing.assert_array_equal(segmentation.mask_array(segment.segment_id),
                                          files_segmentation.mask_array(segment.segment_id))
