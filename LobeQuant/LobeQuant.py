"""LobeQuant: liver lobes, IA/IV routes, lesions and tumour-to-non-tumour ratios (T/N) per cycle.

Panel for the IA-vs-IV study of 177Lu-dotatate (LUTIA): split the liver into right and
left lobes (the segmentation's own lobes, a plane or Cantlie's landmarks, Couinaud
segments, or hepatic artery points), tag the injected lobe IA and the other IV, give each
lesion its lobe, and measure per cycle the T/N of every lesion and lobe, the IA/IV lobe
T/N ratio (the primary endpoint) and the kidney, liver and extrahepatic uptake. Every
step is a Logic method that works without the panel; the computation is in ``luprrt``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Union

import numpy as np
import SimpleITK as sitk
import slicer
import vtk
from slicer import (
    vtkMRMLMarkupsFiducialNode,
    vtkMRMLMarkupsPlaneNode,
    vtkMRMLPlotChartNode,
    vtkMRMLScalarVolumeNode,
    vtkMRMLSegmentationNode,
    vtkMRMLTableNode,
)
from slicer.i18n import tr as _
from slicer.i18n import translate
from slicer.parameterNodeWrapper import Choice, WithinRange, parameterNodeWrapper
from slicer.ScriptedLoadableModule import (
    ScriptedLoadableModule,
    ScriptedLoadableModuleLogic,
    ScriptedLoadableModuleTest,
    ScriptedLoadableModuleWidget,
)
from slicer.util import VTKObservationMixin

from luprrt import mrml

# The lobe-split methods come from the core's registry, the one list the command line reads too.
# luprrt needs only numpy, scipy and SimpleITK to import, and Slicer puts every module folder of
# the extension on sys.path when it registers the modules, before it instantiates any of them.
from luprrt.liver import LOBE_SPLIT_METHODS
from luprrt.provenance import ProgressCallback, no_progress

# "segmentation": keep the segmentation's own lobe segments; the others split the liver.
SPLIT_METHODS = ("segmentation", *LOBE_SPLIT_METHODS)
# The cycles table keeps its SPECT volumes as node references (row n = n-th reference), so they
# survive scene save/load and import.
SPECT_REFERENCE_ROLE = "LuPRRT.SpectVolume"
IA_SIDE_ATTRIBUTE = "LuPRRT.IASide"


#
# LobeQuant
#
class LobeQuant(ScriptedLoadableModule):
    """Module metadata (title, category, help and acknowledgement)."""

    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = _("Lobe Quantification")
        self.parent.categories = [f"{translate('qSlicerAbstractCoreModule', 'Nuclear Medicine')}.LuPRRT"]
        self.parent.dependencies = ["LuPRRTExtension"]  # the hidden library module: luprrt on the path
        self.parent.contributors = ["LuPRRT Developers (LuPRRT project)"]
        self.parent.helpText = _(
            "Tumour-to-non-tumour activity-concentration ratio (T/N) of the intra-arterially (IA) treated "
            "liver lobe versus the intravenously (IV) treated lobe after 177Lu-dotatate, per treatment "
            "cycle. <b>Lobes</b>: use the segmentation's lobe segments or split the liver by a plane (or "
            "Cantlie's three landmarks), Couinaud segments 1-8 or right/left hepatic artery points. "
            "<b>Cycles</b>: add each quantitative SPECT (Bq/mL) with its cycle and hours after injection. "
            "<b>Apply</b>: T/N per lesion and lobe, the IA/IV ratio, kidney, liver and extrahepatic uptake, "
            "and a chart of T/N by cycle. Structures are found by their LuPRRT tags, not by name. ")
        self.parent.helpText += self.getDefaultModuleDocumentationLink()
        self.parent.acknowledgementText = _(
            "Part of LuPRRT, quantitative imaging for 177Lu-dotatate PRRT of neuroendocrine liver "
            "metastases. Study design: intra-arterial versus intravenous administration in one patient "
            "(Ebbers et al., EJNMMI 2024). Lobe anatomy: Couinaud 1957; Bismuth, World J Surg 1982;6:3.")

#
# LobeQuantParameterNode
#
@parameterNodeWrapper
class LobeQuantParameterNode:
    """Inputs, outputs and settings of the panel (saved with the scene).

    ctVolume : CT of the segmentation (shown with the results; not used in the numbers)
    segmentation : liver (tag role=liver), lesions (role=lesion) and kidneys; lobes optional
    iaSide : hepatic artery that received 177Lu-dotatate
    lobeSplitMethod : "segmentation" (its lobe segments) or a method of luprrt.liver.LOBE_SPLIT_METHODS
    splitPlane : markups plane, or three Cantlie landmarks (gallbladder fossa, middle hepatic vein, IVC)
    couinaudVolume, caudate : Couinaud label map 1-8 and the lobe given the caudate lobe
    rightVesselPoints, leftVesselPoints : right and left hepatic artery points
    cyclesTable : one row per SPECT (cycle, hours after injection, administered activity)
    spectVolume, cycleNumber, hoursPostInjection, administeredActivityMbq : the SPECT to add
    marginMm, marginOneSpectVoxel : non-tumour margin around lesions (default one SPECT voxel), mm
    fractionalOccupancy : share of SPECT voxels covered by lesions and lobes instead of nearest neighbour
    detectionFactor, minLesionVolumeMl : lesion candidates above this multiple of the non-tumour level
    calibrationFile : site calibration (JSON or recovery-table CSV; "." or empty: none): recovery-corrected T/N
    targetLesions, targetMinDiameterMm : the trial endpoint's target lesions per lobe and their minimum diameter
    trialTable : output, the trial endpoint per cycle and lobe
    """

    ctVolume: vtkMRMLScalarVolumeNode
    segmentation: vtkMRMLSegmentationNode
    iaSide: Annotated[str, Choice(["right", "left"])] = "right"
    lobeSplitMethod: Annotated[str, Choice(list(SPLIT_METHODS))] = "segmentation"
    # typing.Union, not "A | B": Slicer's parameterNodeWrapper only recognises typing.Union (its
    # serializers test get_origin(...) == typing.Union), and a union of nodes needs None to be clearable.
    splitPlane: Union[vtkMRMLMarkupsPlaneNode, vtkMRMLMarkupsFiducialNode, None]  # noqa: UP007
    couinaudVolume: vtkMRMLScalarVolumeNode
    caudate: Annotated[str, Choice(["left", "right", "exclude"])] = "left"
    rightVesselPoints: vtkMRMLMarkupsFiducialNode
    leftVesselPoints: vtkMRMLMarkupsFiducialNode
    cyclesTable: vtkMRMLTableNode
    spectVolume: vtkMRMLScalarVolumeNode
    cycleNumber: Annotated[int, WithinRange(1, 12)] = 1
    hoursPostInjection: Annotated[float, WithinRange(0.0, 2000.0)] = 24.0
    administeredActivityMbq: Annotated[float, WithinRange(0.0, 20000.0)] = 7400.0
    marginMm: Annotated[float, WithinRange(0.0, 30.0)] = 5.0
    marginOneSpectVoxel: bool = True
    fractionalOccupancy: bool = False
    detectionFactor: Annotated[float, WithinRange(1.0, 20.0)] = 3.0
    minLesionVolumeMl: Annotated[float, WithinRange(0.0, 100.0)] = 1.0
    lobeSegmentation: vtkMRMLSegmentationNode
    tnTable: vtkMRMLTableNode
    ratioTable: vtkMRMLTableNode
    uptakeTable: vtkMRMLTableNode
    candidatesTable: vtkMRMLTableNode
    tnChart: vtkMRMLPlotChartNode
    calibrationFile: Path
    targetLesions: Annotated[int, WithinRange(1, 10)] = 3
    targetMinDiameterMm: Annotated[float, WithinRange(0.0, 200.0)] = 30.0
    trialTable: vtkMRMLTableNode


#
# LobeQuantWidget
#
class LobeQuantWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    """The panel: gathers inputs, calls the Logic, shows results."""

    def __init__(self, parent=None) -> None:
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None
        self._parameterNode = None
        self._parameterNodeGuiTag = None

    def setup(self) -> None:
        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/LobeQuant.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        self.logic = LobeQuantLogic()

        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)
        self.ui.splitButton.connect("clicked(bool)", self.onSplitButton)
        self.ui.addCycleButton.connect("clicked(bool)", self.onAddCycleButton)
        self.ui.removeCycleButton.connect("clicked(bool)", self.onRemoveCycleButton)
        self.ui.detectButton.connect("clicked(bool)", self.onDetectButton)
        self.ui.applyButton.connect("clicked(bool)", self.onApplyButton)
        self.ui.exportButton.connect("clicked(bool)", self.onExportButton)
        self.ui.exportDicomButton.connect("clicked(bool)", self.onExportDicomButton)
        self.ui.exportDirectoryButton.connect("directoryChanged(QString)", self._updateButtons)
        self.initializeParameterNode()

    def cleanup(self) -> None:
        """Slicer calls this alone when it reloads or unloads the module (no exit()): disconnect the
        parameter node from this panel too, or it keeps updating the old widgets."""
        self.setParameterNode(None)
        self.removeObservers()

    def enter(self) -> None:
        self.initializeParameterNode()

    def exit(self) -> None:
        self.setParameterNode(None)

    def onReload(self) -> None:
        """Reload the helper package too (Slicer's reload only re-imports this file)."""
        import importlib
        import sys

        for name in [n for n in sys.modules if n == "LobeQuantLib" or n.startswith("LobeQuantLib.")]:
            importlib.reload(sys.modules[name])
        ScriptedLoadableModuleWidget.onReload(self)

    def onSceneStartClose(self, caller, event) -> None:
        self.setParameterNode(None)

    def onSceneEndClose(self, caller, event) -> None:
        if self.parent.isEntered:
            self.initializeParameterNode()

    def initializeParameterNode(self) -> None:
        self.setParameterNode(self.logic.getParameterNode())
        if not self._parameterNode.segmentation:
            self._parameterNode.segmentation = slicer.mrmlScene.GetFirstNodeByClass("vtkMRMLSegmentationNode")

    def setParameterNode(self, inputParameterNode: LobeQuantParameterNode | None) -> None:
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self._parameterNodeGuiTag = None
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._updateButtons)
        self._parameterNode = inputParameterNode
        if self._parameterNode:
            self._parameterNodeGuiTag = self._parameterNode.connectGui(self.ui)
            self.addObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._updateButtons)
            self._updateButtons()

    def _updateButtons(self, caller=None, event=None) -> None:
        """Enable each step only when its inputs are complete; the tooltip says what is missing."""
        p = self._parameterNode
        splitProblem = self.logic.lobeSplitProblem(p.segmentation, p.lobeSplitMethod, p.splitPlane,
                                                   p.couinaudVolume, p.rightVesselPoints, p.leftVesselPoints)
        cycles = self.logic.numberOfCycles(p.cyclesTable)
        steps = (
            (self.ui.splitButton, _("Split the liver into right and left lobes."),
             _("Choose a split method other than the segmentation's own lobes.")
             if p.lobeSplitMethod == "segmentation" else splitProblem),
            (self.ui.addCycleButton, _("Add the SPECT with its cycle and hours after injection."),
             None if p.spectVolume else _("Select a SPECT volume.")),
            (self.ui.removeCycleButton, _("Remove the selected SPECT from the cycles."),
             None if cycles else _("No SPECT added yet.")),
            (self.ui.detectButton, _("Find hot components in the liver as lesion candidates."),
             None if p.spectVolume and p.segmentation else _("Select a segmentation and a SPECT volume.")),
            (self.ui.applyButton, _("Compute T/N per lesion and lobe, the IA/IV ratio and organ uptake."),
             splitProblem or (None if cycles else _("Add at least one SPECT to the cycles."))),
            (self.ui.exportButton, _("Write the result tables as CSV files."),
             None if p.tnTable and self.ui.exportDirectoryButton.directory else _("Compute T/N first.")),
            (self.ui.exportDicomButton, _("Write DICOM SEG and a TID 1500 report of every cycle to the folder."),
             None if p.tnTable and p.ctVolume and self.ui.exportDirectoryButton.directory
             else _("Compute T/N with a CT loaded from DICOM first.")),
        )
        for button, ready, problem in steps:
            button.enabled = problem is None
            button.toolTip = ready if problem is None else problem
        # Only the inputs of the chosen split (and margin mode) are editable.
        method = p.lobeSplitMethod
        self.ui.splitPlaneSelector.enabled = method in ("plane", "cantlie")
        self.ui.couinaudSelector.enabled = self.ui.caudateComboBox.enabled = method == "couinaud"
        self.ui.rightVesselsSelector.enabled = self.ui.leftVesselsSelector.enabled = method == "vessels"
        self.ui.marginSlider.enabled = not p.marginOneSpectVoxel

    def onSplitButton(self) -> None:
        with slicer.util.tryWithErrorDisplay(_("Failed to split the liver into lobes."), waitCursor=True):
            p = self._parameterNode
            p.lobeSegmentation = self.logic.splitLobes(
                p.segmentation, p.lobeSplitMethod, p.splitPlane, p.couinaudVolume, p.rightVesselPoints,
                p.leftVesselPoints, caudate=p.caudate)

    def onAddCycleButton(self) -> None:
        with slicer.util.tryWithErrorDisplay(_("Failed to add the SPECT."), waitCursor=True):
            p = self._parameterNode
            p.cyclesTable = self.logic.addCycle(p.cyclesTable, p.spectVolume, p.cycleNumber,
                                                p.hoursPostInjection, p.administeredActivityMbq or None)

    def onRemoveCycleButton(self) -> None:
        with slicer.util.tryWithErrorDisplay(_("Failed to remove the SPECT."), waitCursor=True):
            row = self.ui.cyclesTableView.currentIndex().row()
            self.logic.removeCycle(self._parameterNode.cyclesTable, row if row >= 0 else None)

    def onDetectButton(self) -> None:
        with slicer.util.tryWithErrorDisplay(_("Failed to detect lesion candidates."), waitCursor=True):
            p = self._parameterNode
            p.candidatesTable = self.logic.detectLesionCandidates(
                p.spectVolume, p.lobeSegmentation or p.segmentation, factor=p.detectionFactor,
                minVolumeMl=p.minLesionVolumeMl, tableNode=p.candidatesTable)

    def onApplyButton(self) -> None:
        with slicer.util.tryWithErrorDisplay(_("Failed to compute T/N."), waitCursor=True):
            p = self._parameterNode
            segmentation = p.segmentation
            if p.lobeSplitMethod != "segmentation":
                p.lobeSegmentation = self.logic.splitLobes(
                    segmentation, p.lobeSplitMethod, p.splitPlane, p.couinaudVolume, p.rightVesselPoints,
                    p.leftVesselPoints, caudate=p.caudate)
                segmentation = p.lobeSegmentation
            progress = slicer.util.createProgressDialog(labelText=_("Computing T/N"), maximum=100)
            try:
                calibration = p.calibrationFile if str(p.calibrationFile) not in ("", ".") else None
                tn, ratio, uptake, trial = self.logic.computeTumourToNonTumour(
                    segmentation, self.logic.cyclesFromTable(p.cyclesTable), p.iaSide,
                    marginMm=None if p.marginOneSpectVoxel and calibration is None else p.marginMm,
                    fractional=p.fractionalOccupancy, calibrationFile=calibration, targetLesions=p.targetLesions,
                    targetMinDiameterMm=p.targetMinDiameterMm, tableNode=p.tnTable, ratioTableNode=p.ratioTable,
                    uptakeTableNode=p.uptakeTable, trialTableNode=p.trialTable,
                    progress=lambda fraction, message: self._showProgress(progress, fraction, message))
            finally:
                progress.close()
            p.tnTable, p.ratioTable, p.uptakeTable, p.trialTable = tn, ratio, uptake, trial
            p.tnChart = self.logic.createTnChart(ratio, p.tnChart)
            slicer.modules.plots.logic().ShowChartInLayout(p.tnChart)

    def onExportButton(self) -> None:
        with slicer.util.tryWithErrorDisplay(_("Failed to export the tables."), waitCursor=True):
            p = self._parameterNode
            self.logic.exportCsv(self.ui.exportDirectoryButton.directory, tnTableNode=p.tnTable,
                                 ratioTableNode=p.ratioTable, uptakeTableNode=p.uptakeTable,
                                 overwrite=self.ui.overwriteCheckBox.checked)

    def onExportDicomButton(self) -> None:
        with slicer.util.tryWithErrorDisplay(_("Failed to export DICOM."), waitCursor=True):
            from LuPRRTExtension import ensurePythonRequirements

            ensurePythonRequirements()  # highdicom and pynetdicom, if this Slicer lacks them
            p = self._parameterNode
            self.logic.exportDicom(self.ui.exportDirectoryButton.directory, p.lobeSegmentation or p.segmentation,
                                   mrml.dicom_files_of_volume_node(p.ctVolume), tnTableNode=p.tnTable,
                                   ratioTableNode=p.ratioTable, uptakeTableNode=p.uptakeTable,
                                   iaSide=p.iaSide, overwrite=self.ui.overwriteCheckBox.checked)

    @staticmethod
    def _showProgress(dialog, fraction: float, message: str) -> None:
        dialog.labelText = message
        dialog.value = int(100 * fraction)
        slicer.app.processEvents()


#
# LobeQuantLogic
#
class LobeQuantLogic(ScriptedLoadableModuleLogic):
    """Lobes, routes, lesions, T/N, uptake and charts on MRML nodes; the numbers come from ``luprrt``.

    Methods take nodes and plain values (never the parameter node), return new or filled
    nodes, never modify their input nodes, and raise ValueError with a message naming the
    problem and the node.
    """

    def getParameterNode(self) -> LobeQuantParameterNode:
        return LobeQuantParameterNode(super().getParameterNode())

    # -- lobes and routes --------------------------------------------------------------------------------
    def lobeSplit(self, method: str, planeNode=None, couinaudVolumeNode=None, rightSeedsNode=None,
                  leftSeedsNode=None, caudate: str = "left"):
        """The ``luprrt.liver.LobeSplit`` that nodes describe.

        :param method: a name of ``luprrt.liver.LOBE_SPLIT_METHODS``: "plane" (``planeNode``: a
            markups plane, or three Cantlie landmarks), "cantlie" (``planeNode``: three landmarks in
            the order gallbladder fossa, middle hepatic vein, inferior vena cava), "couinaud"
            (``couinaudVolumeNode``: labels 1-8) or "vessels" (right and left hepatic artery points).
        :param caudate: lobe given the caudate lobe (Couinaud I): "left", "right" or "exclude".
        """
        from luprrt.liver import LobeSplit

        if method not in LOBE_SPLIT_METHODS:
            raise ValueError(f"unknown lobe split method {method!r}; expected one of {tuple(LOBE_SPLIT_METHODS)}")
        if method in ("plane", "cantlie"):
            if planeNode is None:
                raise ValueError("the plane split needs a markups plane or three Cantlie landmarks")
            if method == "plane" and planeNode.IsA("vtkMRMLMarkupsPlaneNode"):
                return LobeSplit.plane(*mrml.markups_plane_to_point_normal(planeNode))
            points = mrml.points_from_fiducials(planeNode)
            if len(points) != 3:
                raise ValueError(f"markups {planeNode.GetName()!r} has {len(points)} points; Cantlie's plane "
                                 "needs 3 (gallbladder fossa, middle hepatic vein, inferior vena cava)")
            return LobeSplit.cantlie(*points)
        if method == "couinaud":
            if couinaudVolumeNode is None:
                raise ValueError("the Couinaud split needs a label map of Couinaud segments 1-8")
            image = mrml.image_from_volume_node(couinaudVolumeNode)
            values = sitk.GetArrayViewFromImage(image)
            if values.min() < 0 or values.max() > 255 or not np.array_equal(values, np.round(values)):
                raise ValueError(f"volume {couinaudVolumeNode.GetName()!r} is not a label map of Couinaud "
                                 "segments (integers 1-8)")
            return LobeSplit.couinaud(sitk.Cast(image, sitk.sitkUInt8), caudate)
        if method == "vessels":
            if rightSeedsNode is None or leftSeedsNode is None:
                raise ValueError("the vessel split needs points of both the right and the left hepatic "
                                 "artery")
            points = {}
            for side, node in (("right", rightSeedsNode), ("left", leftSeedsNode)):
                points[side] = mrml.points_from_fiducials(node)
                if len(points[side]) == 0:
                    raise ValueError(f"markups {node.GetName()!r} ({side} hepatic artery) has no points")
            return LobeSplit.vessels(points["right"], points["left"])
        raise ValueError(f"lobe split method {method!r} ({LOBE_SPLIT_METHODS[method].title}) takes no "
                         "inputs from this panel yet; use the luprrt.liver API")

    def lobeSplitProblem(self, segmentationNode, method: str, planeNode=None, couinaudVolumeNode=None,
                         rightSeedsNode=None, leftSeedsNode=None) -> str | None:
        """Why the lobes cannot be made yet (a user-facing sentence), or None."""
        if segmentationNode is None:
            return _("Select the liver and lesion segmentation.")
        needed = {"plane": planeNode, "cantlie": planeNode, "couinaud": couinaudVolumeNode,
                  "vessels": rightSeedsNode and leftSeedsNode}
        if method in needed and not needed[method]:
            return {"plane": _("Select a markups plane or three Cantlie landmarks."),
                    "cantlie": _("Select three Cantlie landmarks (gallbladder fossa, middle hepatic vein, IVC)."),
                    "couinaud": _("Select the Couinaud segment label map."),
                    "vessels": _("Select right and left hepatic artery points.")}[method]
        return None

    def splitLobes(self, segmentationNode, method: str, planeNode=None, couinaudVolumeNode=None,
                   rightSeedsNode=None, leftSeedsNode=None, caudate: str = "left", name: str | None = None):
        """A new segmentation node: the input's segments with right and left lobes from ``method``.

        The liver is the segment tagged role=liver; lobe segments already present are replaced.
        See :meth:`lobeSplit` for the methods. The input node is not modified.
        """
        from luprrt.liver import split_lobes

        split = self.lobeSplit(method, planeNode, couinaudVolumeNode, rightSeedsNode, leftSeedsNode, caudate)
        segmentation = mrml.segmentation_from_segmentation_node(
            self._required(segmentationNode, "segmentation"))
        try:
            result = split_lobes(segmentation, split)
        except ValueError as error:
            raise ValueError(f"segmentation {segmentationNode.GetName()!r}: {error}") from error
        node = mrml.segmentation_node_from_segmentation(result, name or f"{segmentationNode.GetName()} lobes")
        volumes = {side: self._segmentVolumeMl(result, "lobe", side) for side in ("right", "left")}
        logging.info("LobeQuant: split %s by %s: right lobe %.1f mL, left lobe %.1f mL",
                     segmentationNode.GetName(), method, volumes["right"], volumes["left"])
        return node

    def assignRoutes(self, segmentationNode, iaSide: str, name: str | None = None):
        """A new segmentation node with the injected lobe tagged IA, the other IV, and lesions in lobes.

        Each lesion gets the side and route of the lobe holding most of its volume; the IA side
        is recorded as the node attribute ``LuPRRT.IASide``. The input node is not modified.

        :param iaSide: "right" or "left": the hepatic artery that received 177Lu-dotatate.
        """
        from luprrt.workflows.lobequant import prepare_segmentation

        segmentation = mrml.segmentation_from_segmentation_node(
            self._required(segmentationNode, "segmentation"))
        try:
            routed = prepare_segmentation(segmentation, iaSide)
        except ValueError as error:
            raise ValueError(f"segmentation {segmentationNode.GetName()!r}: {error}") from error
        node = mrml.segmentation_node_from_segmentation(routed, name or f"{segmentationNode.GetName()} IA-IV")
        node.SetAttribute(IA_SIDE_ATTRIBUTE, iaSide)
        lesions = {side: len(routed.find(role="lesion", side=side)) for side in ("right", "left")}
        logging.info("LobeQuant: IA lobe %s; lesions right %d, left %d", iaSide, lesions["right"],
                     lesions["left"])
        return node

    # -- cycles --------------------------------------------------------------------------------------
    def addCycle(self, cyclesTableNode, spectVolumeNode, cycle: int, hoursPostInjection: float,
                 administeredActivityMbq: float | None = None):
        """Add a SPECT (Bq/mL) of ``cycle`` at ``hoursPostInjection`` (h) to the cycles table (made if None).

        :param administeredActivityMbq: activity given in that cycle (MBq), for uptake in percent.
        :return: the cycles table node.
        """
        self._spectImage(spectVolumeNode)  # checks the node and its units now, not at Apply
        if int(cycle) != cycle or cycle < 1:
            raise ValueError(f"cycle must be a whole number >= 1, got {cycle}")
        if not (math.isfinite(hoursPostInjection) and hoursPostInjection >= 0):
            raise ValueError(f"hours after injection must be >= 0, got {hoursPostInjection}")
        rows = [{"spect_volume": node.GetName(), "cycle": c, "hours_post_injection": h,
                 "administered_activity_mbq": math.nan if a is None else a}
                for node, c, h, a in self.cyclesFromTable(cyclesTableNode)] if cyclesTableNode else []
        if any(row["cycle"] == cycle and abs(row["hours_post_injection"] - hoursPostInjection) < 1e-3
               for row in rows):
            raise ValueError(f"cycle {cycle} already has a SPECT at {hoursPostInjection:g} h")
        rows.append({"spect_volume": spectVolumeNode.GetName(), "cycle": int(cycle),
                     "hours_post_injection": float(hoursPostInjection),
                     "administered_activity_mbq": math.nan if administeredActivityMbq is None
                     else float(administeredActivityMbq)})
        references = [*self._spectReferences(cyclesTableNode), spectVolumeNode.GetID()]
        table = mrml.table_node_output(rows, "LobeQuant cycles", cyclesTableNode)
        table.RemoveNodeReferenceIDs(SPECT_REFERENCE_ROLE)
        for nodeId in references:
            table.AddNodeReferenceID(SPECT_REFERENCE_ROLE, nodeId)
        logging.info("LobeQuant: cycle %d SPECT %s at %g h", cycle, spectVolumeNode.GetName(),
                     hoursPostInjection)
        return table

    def removeCycle(self, cyclesTableNode, row: int | None = None) -> None:
        """Remove one row (default the last) of the cycles table."""
        cycles = self.cyclesFromTable(cyclesTableNode)
        if not cycles:
            raise ValueError("the cycles table is empty")
        row = len(cycles) - 1 if row is None else row
        if not 0 <= row < len(cycles):
            raise ValueError(f"row {row} is not in the cycles table (rows 0-{len(cycles) - 1})")
        cyclesTableNode.RemoveRow(row)
        cyclesTableNode.RemoveNthNodeReferenceID(SPECT_REFERENCE_ROLE, row)
        logging.info("LobeQuant: removed cycle row %d", row)

    def numberOfCycles(self, cyclesTableNode) -> int:
        """Number of SPECTs in the cycles table (0 for None)."""
        if cyclesTableNode is None:
            return 0
        return cyclesTableNode.GetNumberOfNodeReferences(SPECT_REFERENCE_ROLE)

    def cyclesFromTable(self, cyclesTableNode) -> list[tuple]:
        """[(SPECT volume node, cycle, hours after injection, administered MBq or None), ...] of the table."""

        if cyclesTableNode is None:
            return []
        rows = mrml.rows_from_table_node(cyclesTableNode) if cyclesTableNode.GetNumberOfRows() else []
        nodes = [cyclesTableNode.GetNthNodeReference(SPECT_REFERENCE_ROLE, n)
                 for n in range(cyclesTableNode.GetNumberOfNodeReferences(SPECT_REFERENCE_ROLE))]
        if len(nodes) != len(rows) or None in nodes:
            raise ValueError(f"cycles table {cyclesTableNode.GetName()!r} lists {len(rows)} rows but refers "
                             f"to {len([n for n in nodes if n])} SPECT volumes; add the SPECTs with addCycle")
        activity = [row["administered_activity_mbq"] for row in rows]
        return [(node, int(row["cycle"]), float(row["hours_post_injection"]), None if math.isnan(a) else a)
                for node, row, a in zip(nodes, rows, activity, strict=True)]

    # -- lesions -------------------------------------------------------------------------------------
    def detectLesionCandidates(self, spectNode, segmentationNode,
                               thresholdMode: str = "relative_to_nontumour", factor: float = 3.0,
                               minVolumeMl: float = 1.0, tableNode=None):
        """A table of hot liver components on the SPECT as lesion candidates (segmentation unchanged).

        :param thresholdMode: "relative_to_nontumour" (voxels above ``factor`` x the median
            non-tumour liver level) or "percent_of_local_max" (``factor`` in (0, 1]).
        :param minVolumeMl: smaller components are dropped, mL.
        :return: table node; a candidate overlapping a known lesion keeps its tracking id.
        """
        from luprrt.liver import detect_lesion_candidates
        from luprrt.segments import segmentation_on_grid

        image = self._spectImage(spectNode)
        segmentation = mrml.segmentation_from_segmentation_node(
            self._required(segmentationNode, "segmentation"))
        regions = segmentation_on_grid(segmentation, image, allow_empty=True)
        candidates = detect_lesion_candidates(image, regions, threshold_mode=thresholdMode, factor=factor,
                                              min_volume_ml=minVolumeMl)
        columns = {"lesion_id": [], "is_existing": [], "side": [], "volume_ml": [], "max_bq_per_ml": [],
                   "mean_bq_per_ml": [], "centroid_r_mm": [], "centroid_a_mm": [], "centroid_s_mm": []}
        for candidate in candidates:
            x, y, z = candidate.centroid_lps_mm
            for key, value in (("lesion_id", candidate.lesion_id), ("is_existing", candidate.is_existing),
                               ("side", candidate.side or ""), ("volume_ml", candidate.volume_ml),
                               ("max_bq_per_ml", candidate.max_bq_per_ml),
                               ("mean_bq_per_ml", candidate.mean_bq_per_ml),
                               ("centroid_r_mm", -x), ("centroid_a_mm", -y), ("centroid_s_mm", z)):
                columns[key].append(value)
        table = mrml.table_node_output(columns, f"{spectNode.GetName()} lesion candidates", tableNode)
        logging.info("LobeQuant: %d lesion candidates on %s", len(candidates), spectNode.GetName())
        return table

    # -- T/N and uptake ------------------------------------------------------------------------------
    def computeTumourToNonTumour(self, segmentationNode, cycles: Sequence[tuple], iaSide: str,
                                 marginMm: float | None = None, fractional: bool = False, tableNode=None,
                                 ratioTableNode=None, uptakeTableNode=None, supersampling: int = 5,
                                 calibrationFile=None, targetLesions: int = 3, targetMinDiameterMm: float = 30.0,
                                 trialTableNode=None, boundaryUncertainty: bool = True,
                                 progress: ProgressCallback | None = None):
        """T/N per lobe and lesion for every SPECT, the IA/IV lobe T/N ratio, and organ uptake.

        :param segmentationNode: lobes (tag role=lobe with sides), lesions (role=lesion) and,
            for uptake, kidneys (role=kidney); lesions are assigned to lobes here.
        :param cycles: (SPECT volume node in Bq/mL, cycle, hours after injection[, administered MBq]).
        :param iaSide: "right" or "left", the hepatic artery that received the injection.
        :param marginMm: non-tumour safety margin around lesions (mm); None = one SPECT voxel.
        :param fractional: fractional occupancy of SPECT voxels instead of nearest neighbour.
        :param tableNode, ratioTableNode, uptakeTableNode, trialTableNode: tables to fill (new ones when None).
        :param calibrationFile: a site calibration (JSON or recovery-table CSV path, or a SiteCalibration): every
            T/N also recovery-corrected with its 95 % interval (fractional occupancy; the non-tumour margin
            defaults to 2 x its effective FWHM, at least 10 mm).
        :param targetLesions, targetMinDiameterMm: the trial endpoint: up to this many target lesions per lobe
            with a longest axial diameter above this (mm), largest first.
        :param boundaryUncertainty: with a calibration, include the segmentation-boundary (+-1 voxel) term.
        :param progress: callable(fraction, message).
        :return: (T/N table, IA/IV ratio table, uptake table or None when an administered
            activity or the kidney segments are missing, trial-endpoint table).
        """
        from luprrt.grid import check_grid_compatibility
        from luprrt.liver import tumour_to_nontumour, uptake_rows
        from luprrt.workflows.calibrate import load_calibration
        from luprrt.workflows.lobequant import prepare_segmentation

        if not cycles:
            raise ValueError("no SPECT given: add at least one cycle's SPECT")
        progress = progress or no_progress
        name = self._required(segmentationNode, "segmentation").GetName()
        try:
            segmentation = prepare_segmentation(mrml.segmentation_from_segmentation_node(segmentationNode),
                                                iaSide)
        except ValueError as error:
            raise ValueError(f"segmentation {name!r}: {error}") from error
        cycleSpects = []
        for entry in cycles:
            cycleSpect = self._cycleSpect(entry)
            try:
                check_grid_compatibility(segmentation.reference, cycleSpect.spect,
                                         what=f"segmentation {name!r}")
            except ValueError as error:
                raise ValueError(f"SPECT {entry[0].GetName()!r}: geometry mismatch: {error}") from error
            cycleSpects.append(cycleSpect)
        calibration = load_calibration(calibrationFile)
        result = tumour_to_nontumour(cycleSpects, segmentation, margin_mm=marginMm,
                                     occupancy="fractional" if fractional else "nearest",
                                     supersampling=supersampling, calibration=calibration,
                                     boundary_uncertainty=boundaryUncertainty, target_lesions=targetLesions,
                                     target_min_diameter_mm=targetMinDiameterMm,
                                     progress=lambda f, m: progress(0.8 * f, m))
        tnTable = mrml.table_node_output(result.rows, "LobeQuant T/N", tableNode)
        # The trial endpoint's IA/IV ratio joins the lobe ratio of the same scan (one row per SPECT).
        trialRatio = {(r["cycle"], r["hours_post_injection"]): r for r in result.trial_ratio_rows}
        ratioRows = [row | {k: v for k, v in trialRatio.get((row["cycle"], row["hours_post_injection"]), {}).items()
                            if k.startswith(("n_targets", "tn_mean_targets", "tn_mean_corrected_targets"))}
                     for row in result.ratio_rows]
        ratioTable = mrml.table_node_output(ratioRows, "LobeQuant IA-IV ratio", ratioTableNode)
        trialTable = mrml.table_node_output(result.trial_rows, "LobeQuant trial endpoint", trialTableNode)
        uptakeTable = None
        missing = [c.cycle for c in cycleSpects if c.administered_activity_mbq is None]
        if missing:
            logging.warning("LobeQuant: no uptake table: administered activity unknown for cycles %s",
                            missing)
        elif not segmentation.find(role="kidney"):
            logging.warning("LobeQuant: no uptake table: segmentation %r has no kidney segment", name)
        else:
            rows = uptake_rows(cycleSpects, segmentation, progress=lambda f, m: progress(0.8 + 0.2 * f, m))
            uptakeTable = mrml.table_node_output(rows, "LobeQuant uptake", uptakeTableNode)
        for table in filter(None, (tnTable, ratioTable, uptakeTable, trialTable)):
            table.SetAttribute(IA_SIDE_ATTRIBUTE, iaSide)
            table.SetAttribute("LuPRRT.Occupancy", result.parameters["occupancy"])
            table.SetAttribute("LuPRRT.MarginMm", repr(result.parameters["margin_mm"]))
            table.SetAttribute("LuPRRT.MarginRule", result.parameters["margin_rule"])
            table.SetAttribute("LuPRRT.Segmentation", name)
            if calibration is not None:
                table.SetAttribute("LuPRRT.Calibration", calibration.label)
        progress(1.0, "done")
        ratios = ", ".join(f"cycle {r['cycle']}: {r['tn_mean_ia_over_iv']:.3g}" for r in result.ratio_rows)
        logging.info("LobeQuant: T/N of %d SPECTs (IA %s, %s occupancy), IA/IV lobe T/N %s", len(cycleSpects),
                     iaSide, result.parameters["occupancy"], ratios)
        return tnTable, ratioTable, uptakeTable, trialTable

    def createTnChart(self, ratioTableNode, chartNode=None, name: str = "LobeQuant T/N by cycle"):
        """A plot chart of the lobe T/N by cycle: one series for the IA lobe, one for the IV lobe.

        :param chartNode: an existing chart to refill, keeping its ID and name (the series an
            earlier call made for it are removed from the scene).
        """

        ratioTableNode = self._required(ratioTableNode, "IA/IV ratio table")
        rows = mrml.rows_from_table_node(ratioTableNode)
        iaSide = rows[0]["ia_side"] if rows else ""
        ivSide = {"right": "left", "left": "right"}.get(iaSide, "")
        labels = {"tn_mean_ia": f"IA lobe ({iaSide})", "tn_mean_iv": f"IV lobe ({ivSide})"}
        chart = mrml.plot_chart(ratioTableNode, "cycle", list(labels), name, plot_type="line",
                                x_title="cycle", y_title="lobe T/N (mean)", chart_node=chartNode)
        for index in range(chart.GetNumberOfPlotSeriesNodes()):
            series = chart.GetNthPlotSeriesNode(index)
            series.SetName(labels[series.GetYColumnName()])
        return chart

    def exportCsv(self, folder: str | Path, tnTableNode=None, ratioTableNode=None, uptakeTableNode=None,
                  overwrite: bool = False) -> list[Path]:
        """Write the tables as ``lobequant_tn.csv``, ``lobequant_ia_iv_ratio.csv``, ``lobequant_uptake.csv``.

        Nothing is written when one of the files exists and ``overwrite`` is False.
        """
        from luprrt.tables import write_rows_csv
        from luprrt.workflows.lobequant import RATIO_FILE, TN_FILE, UPTAKE_FILE

        folder = Path(folder)
        tables = {TN_FILE: tnTableNode, RATIO_FILE: ratioTableNode, UPTAKE_FILE: uptakeTableNode}
        paths = {name: folder / name for name, node in tables.items() if node is not None}
        if not paths:
            raise ValueError("no table to export")
        existing = [str(p) for p in paths.values() if p.exists()]
        if existing and not overwrite:
            raise FileExistsError(f"files exist: {', '.join(existing)}; allow overwriting to replace them")
        written = [write_rows_csv(mrml.rows_from_table_node(tables[name]), path, overwrite=True)
                   for name, path in paths.items()]
        logging.info("LobeQuant: exported %d tables to %s", len(written), folder)
        return written

    def exportDicom(self, folder: str | Path, segmentationNode, ctDicomFiles: Sequence[str], tnTableNode,
                    ratioTableNode=None, uptakeTableNode=None, iaSide: str | None = None,
                    overwrite: bool = False) -> list[Path]:
        """Write ``cycle<k>/seg.dcm`` (DICOM SEG) and ``cycle<k>/sr.dcm`` (TID 1500 report) per cycle.

        :param segmentationNode: the segmentation the T/N was computed with, on the CT grid.
        :param ctDicomFiles: the CT's DICOM files (the SEG references them and their frame of reference).
        :param iaSide: IA side, to tag the lobes' routes when the segmentation has none yet.
        :returns: the files written; nothing is replaced unless ``overwrite``.
        """
        from luprrt.workflows.export_dicom import export_visit_dicom
        from luprrt.workflows.lobequant import prepare_segmentation

        segmentation = mrml.segmentation_from_segmentation_node(self._required(segmentationNode, "segmentation"))
        if iaSide and segmentation.find(role="lobe"):
            segmentation = prepare_segmentation(segmentation, iaSide)
        tables = {"tn": mrml.rows_from_table_node(self._required(tnTableNode, "T/N table"))}
        for key, node in (("ratio", ratioTableNode), ("uptake", uptakeTableNode)):
            if node is not None:
                tables[key] = mrml.rows_from_table_node(node)
        written = []
        for cycle in sorted({int(row["cycle"]) for row in tables["tn"]}):
            files = export_visit_dicom(segmentation, list(ctDicomFiles),
                                       Path(folder) / f"cycle{cycle}", visit=f"cycle{cycle}", cycle=cycle,
                                       tables=tables, overwrite=overwrite)
            written += list(files.values())
        logging.info("LobeQuant: exported %d DICOM objects to %s", len(written), folder)
        return written

    # -- helpers -------------------------------------------------------------------------------------
    @staticmethod
    def _required(node, what: str):
        if node is None:
            raise ValueError(f"no {what} given")
        return node

    def _spectImage(self, spectNode) -> sitk.Image:

        if spectNode is None or not spectNode.IsA("vtkMRMLScalarVolumeNode"):
            raise ValueError(f"a SPECT must be a scalar volume node, got {spectNode}")
        units = mrml.voxel_units(spectNode)
        if units != "Bq/mL":
            raise ValueError(f"SPECT {spectNode.GetName()!r} is in {units or 'unrecorded units'}, not Bq/mL; "
                             "T/N and uptake need a quantitative SPECT (load it with LuPRRT, or set the node "
                             "attribute LuPRRT.Units to Bq/mL if its voxels are activity concentrations)")
        return mrml.image_from_volume_node(spectNode)

    def _cycleSpect(self, entry):
        from luprrt.liver import CycleSpect

        if len(entry) not in (3, 4):
            raise ValueError(f"a cycle is (SPECT node, cycle, hours[, administered MBq]), got {entry!r}")
        node, cycle, hours = entry[:3]
        activity = entry[3] if len(entry) == 4 else None
        if int(cycle) != cycle or cycle < 1:
            raise ValueError(f"SPECT {node.GetName()!r}: cycle must be a whole number >= 1, got {cycle}")
        return CycleSpect(int(cycle), float(hours), self._spectImage(node),
                          administered_activity_mbq=None if activity is None else float(activity))

    @staticmethod
    def _segmentVolumeMl(segmentation, role: str, side: str) -> float:
        segment = segmentation.find_one(role, side=side)
        voxel_ml = float(np.prod(segmentation.reference.GetSpacing())) / 1000.0
        return float(segmentation.mask_array(segment.segment_id).sum()) * voxel_ml

    def _spectReferences(self, cyclesTableNode) -> list[str]:
        if cyclesTableNode is None:
            return []
        return [cyclesTableNode.GetNthNodeReferenceID(SPECT_REFERENCE_ROLE, n)
                for n in range(cyclesTableNode.GetNumberOfNodeReferences(SPECT_REFERENCE_ROLE))]


#
# LobeQuantTest
#
class LobeQuantTest(ScriptedLoadableModuleTest):
    """Self-test on real MRML: analytic phantoms with exact T/N, the lobe split, and a synthetic patient."""

    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        for name in sorted(n for n in dir(self) if n.startswith("test_")):
            self.setUp()
            getattr(self, name)()

    # -- scene builders (plain names: the runner calls every method named test*) --------------------------
    def _phantomNodes(self, phantom, name: str = "phantom"):

        spect = mrml.volume_node_from_image(phantom.spect, f"{name} SPECT", units="Bq/mL")
        segmentation = mrml.segmentation_node_from_segmentation(phantom.segmentation, f"{name} segmentation")
        return segmentation, spect

    @staticmethod
    def _rows(tableNode, role: str | None = None) -> list[dict]:

        rows = mrml.rows_from_table_node(tableNode)
        return [r for r in rows if role is None or r["role"] == role]

    # -- tests ---------------------------------------------------------------------------------------
    def test_tn_is_exact_on_an_analytic_phantom(self):
        """Uniform lobes and spherical lesions, no blur: T/N per lesion and lobe to 1e-6, both occupancies."""
        from LobeQuantLib.phantoms import LESIONS, NONTUMOUR_BQ_PER_ML, VOXEL_ML, uniform_lobe_phantom

        phantom = uniform_lobe_phantom()
        segmentationNode, spectNode = self._phantomNodes(phantom)
        later = self._phantomNodes(uniform_lobe_phantom(scale=0.5), "cycle 2")[1]
        logic = LobeQuantLogic()
        cycles = [(spectNode, 1, 24.0), (later, 2, 24.0)]
        for fractional in (False, True):
            tn, ratio, uptake, _trial = logic.computeTumourToNonTumour(segmentationNode, cycles, "left",
                                                               fractional=fractional)
            self.assertIsNone(uptake)  # no administered activity, no kidneys
            lesions = self._rows(tn, "lesion")
            self.assertEqual(sorted((r["cycle"], r["lesion_id"]) for r in lesions),
                             sorted((c, i) for c in (1, 2) for i in LESIONS))
            for r in lesions:
                self.assertEqual(r["side"], LESIONS[r["lesion_id"]][3])
                self.assertEqual(r["route"], "IA" if r["side"] == "left" else "IV")
                self.assertAlmostEqual(r["tn_mean"], phantom.lesion_tn[r["lesion_id"]], delta=1e-6)
                self.assertAlmostEqual(r["tn_max"], phantom.lesion_tn[r["lesion_id"]], delta=1e-6)
                self.assertAlmostEqual(r["volume_ml"], phantom.lesion_voxels[r["lesion_id"]] * VOXEL_ML,
                                       delta=1e-9)
            for r in self._rows(tn, "tumour"):
                self.assertAlmostEqual(r["tn_mean"], phantom.lobe_tn[r["side"]], delta=1e-6)
                self.assertAlmostEqual(r["tn_max"], phantom.lobe_tn_max[r["side"]], delta=1e-6)
            for r in self._rows(tn, "non-tumour"):
                scale = (1.0, 0.5)[r["cycle"] - 1]
                expected = NONTUMOUR_BQ_PER_ML[r["side"]] * scale
                self.assertAlmostEqual(r["mean_bq_per_ml"], expected, delta=1e-6)
            ratios = self._rows(ratio)
            self.assertEqual([r["cycle"] for r in ratios], [1, 2])
            for r in ratios:
                self.assertEqual(r["ia_side"], "left")
                self.assertAlmostEqual(r["tn_mean_ia_over_iv"],
                                       phantom.lobe_tn["left"] / phantom.lobe_tn["right"], delta=1e-6)
            self.assertEqual(tn.GetColumnUnitLabel("mean_bq_per_ml"), "Bq/mL")
            self.assertEqual(tn.GetAttribute(IA_SIDE_ATTRIBUTE), "left")

    def test_plane_split_puts_each_voxel_on_its_side(self):
        """A markups plane at LPS x = -20 mm: liver voxels with smaller x form the right lobe, exactly."""
        from LobeQuantLib.phantoms import liver_mask, uniform_lobe_phantom


        phantom = uniform_lobe_phantom(with_lobes=False)
        segmentationNode, _spect = self._phantomNodes(phantom)
        plane = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLMarkupsPlaneNode", "Cantlie plane")
        plane.SetOriginWorld([20.0, 0.0, 0.0])  # RAS: LPS x = -20 mm
        plane.SetNormalWorld([1.0, 0.3, 0.0])  # oblique; its sign must not decide the sides
        split = LobeQuantLogic().splitLobes(segmentationNode, "plane", plane)
        result = mrml.segmentation_from_segmentation_node(split)
        grid = result.reference
        z, y, x = np.indices(sitk.GetArrayViewFromImage(grid).shape)
        origin, spacing = np.asarray(grid.GetOrigin()), np.asarray(grid.GetSpacing())
        lps = [origin[a] + spacing[a] * index for a, index in enumerate((x, y, z))]
        normal_lps = np.array([-1.0, -0.3, 0.0]) / np.linalg.norm([1.0, 0.3, 0.0])
        signed = (lps[0] + 20.0) * normal_lps[0] + lps[1] * normal_lps[1]
        liver = liver_mask()
        right = result.mask_array(result.find_one("lobe", side="right").segment_id)
        left = result.mask_array(result.find_one("lobe", side="left").segment_id)
        # normal_lps points to smaller x (the patient's right): its positive half is the right lobe.
        np.testing.assert_array_equal(right, liver & (signed >= 0))
        np.testing.assert_array_equal(left, liver & (signed < 0))
        self.assertGreater(right.sum(), 1000)
        self.assertGreater(left.sum(), 1000)

    def test_lesions_join_the_lobe_holding_most_of_them(self):
        """Routes follow the IA side; a lesion straddling the split joins the lobe with most of its voxels."""
        from LobeQuantLib.phantoms import RIGHT_LOBE_X_STOP, ball, uniform_lobe_phantom

        from luprrt.segments import SegmentTags

        phantom = uniform_lobe_phantom()
        straddling = ball((12, 20, RIGHT_LOBE_X_STOP + 1), 3.0)  # centre one voxel into the left lobe
        xs = np.indices(straddling.shape)[2]
        inLeft = (straddling & (xs >= RIGHT_LOBE_X_STOP)).sum()
        self.assertGreater(inLeft, straddling.sum() - inLeft)
        self.assertGreater(straddling.sum() - inLeft, 0)
        phantom.segmentation.add_segment(straddling, SegmentTags("lesion", lesion_id="L04"))
        segmentationNode, _spect = self._phantomNodes(phantom)
        routedNode = LobeQuantLogic().assignRoutes(segmentationNode, "right")
        routed = mrml.segmentation_from_segmentation_node(routedNode)
        sides = {s.tags.lesion_id: (s.tags.side, s.tags.route) for s in routed.find(role="lesion")}
        self.assertEqual(sides, {"L01": ("right", "IA"), "L02": ("right", "IA"), "L03": ("left", "IV"),
                                 "L04": ("left", "IV")})
        self.assertEqual({(s.tags.side, s.tags.route) for s in routed.find(role="lobe")},
                         {("right", "IA"), ("left", "IV")})

    def test_couinaud_and_vessel_splits(self):
        """Couinaud II-IV left / V-VIII right and nearest-artery territories, on the phantom liver."""
        from LobeQuantLib.phantoms import RIGHT_LOBE_X_STOP, grid, lobe_masks, uniform_lobe_phantom


        phantom = uniform_lobe_phantom(with_lobes=False)
        segmentationNode, _spect = self._phantomNodes(phantom)
        lobes = lobe_masks()
        labels = np.zeros(lobes["right"].shape, dtype=np.uint8)
        half = labels.shape[1] // 2  # two Couinaud segments per lobe half, split along y
        labels[lobes["right"]] = np.where(np.indices(labels.shape)[1] < half, 5, 8)[lobes["right"]]
        labels[lobes["left"]] = np.where(np.indices(labels.shape)[1] < half, 2, 4)[lobes["left"]]
        image = sitk.GetImageFromArray(labels)
        image.CopyInformation(grid())
        couinaudNode = mrml.volume_node_from_image(image, "Couinaud", node_class="vtkMRMLLabelMapVolumeNode")
        logic = LobeQuantLogic()
        byCouinaud = mrml.segmentation_from_segmentation_node(
            logic.splitLobes(segmentationNode, "couinaud", couinaudVolumeNode=couinaudNode))
        # Artery points on either side of x index RIGHT_LOBE_X_STOP - 0.5: equidistant there.
        xMm = grid().GetOrigin()[0] + 4.0 * (RIGHT_LOBE_X_STOP - 0.5)
        seeds = {}
        for side, offset in (("right", -40.0), ("left", 40.0)):
            seeds[side] = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", f"{side} artery")
            for zMm in (-40.0, 0.0, 40.0):
                seeds[side].AddControlPoint(vtk.vtkVector3d(-(xMm + offset), 0.0, zMm))  # RAS
        byVessels = mrml.segmentation_from_segmentation_node(logic.splitLobes(
            segmentationNode, "vessels", rightSeedsNode=seeds["right"], leftSeedsNode=seeds["left"]))
        for result in (byCouinaud, byVessels):
            for side in ("right", "left"):
                lobe = result.find_one("lobe", side=side)
                np.testing.assert_array_equal(result.mask_array(lobe.segment_id), lobes[side])
        empty = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", "empty")
        with self.assertRaisesRegex(ValueError, "'empty' \\(left hepatic artery\\) has no points"):
            logic.splitLobes(segmentationNode, "vessels", rightSeedsNode=seeds["right"], leftSeedsNode=empty)

    def test_synthetic_patient_fractional_occupancy_reduces_lobe_bias(self):
        """Blurred, noisy SPECT: every lesion has a T/N; fractional occupancy is closer to the lobe truth."""
        from luprrt.phantom import make_patient

        patient = make_patient(3, small=True, n_cycles=1, hours_post_injection=(24.0,), followup_weeks=(),
                               lesion_shape="sphere")
        session = patient.sessions[0]
        segmentationNode = mrml.segmentation_node_from_segmentation(session.segmentation,
                                                                    "patient segmentation")
        spectNode = mrml.volume_node_from_image(session.spect[0].image, "patient SPECT 24h", units="Bq/mL")
        activity = patient.administrations[0].activity_mbq
        truth = patient.truth.time_point(1, 24.0)
        volumes = patient.truth.volumes_ml["cycle1"]
        logic = LobeQuantLogic()
        bias = {}
        for fractional in (False, True):
            tn, _ratio, uptake, _trial = logic.computeTumourToNonTumour(
                segmentationNode, [(spectNode, 1, 24.0, activity)], patient.ia_side, fractional=fractional)
            lesions = {r["lesion_id"]: r for r in self._rows(tn, "lesion")}
            self.assertEqual(set(lesions), {le.lesion_id for le in patient.truth.lesions})
            for lesionId, r in lesions.items():
                # Blur only lowers a hot lesion's mean; noise moves it by well under 5 %.
                self.assertTrue(1.0 < r["tn_mean"] < truth.tn_ratio[lesionId] * 1.05,
                                (lesionId, r["tn_mean"]))
            for r in self._rows(tn, "tumour"):
                members = [le.lesion_id for le in patient.truth.lesions if le.side == r["side"]]
                pooled = (sum(volumes[i] * truth.mean_bq_per_ml[i] for i in members)
                          / sum(volumes[i] for i in members))
                trueTn = pooled / truth.mean_bq_per_ml[f"nontumour_{r['side']}"]
                bias[fractional, r["side"]] = r["tn_mean"] / trueTn - 1
            uptakeRows = {r["region"]: r for r in self._rows(uptake)}
            lobes = uptakeRows["right lobe"]["activity_mbq"] + uptakeRows["left lobe"]["activity_mbq"]
            self.assertAlmostEqual(uptakeRows["liver"]["activity_mbq"], lobes, delta=1e-9 * activity)
        for side in ("right", "left"):
            logging.info("LobeQuant %s lobe T/N bias vs truth: nearest %+.1f %%, fractional %+.1f %%", side,
                         100 * bias[False, side], 100 * bias[True, side])
            self.assertLess(abs(bias[True, side]), abs(bias[False, side]))

    def test_chart_shows_ia_and_iv_lobes_by_cycle(self):
        from LobeQuantLib.phantoms import uniform_lobe_phantom

        phantom = uniform_lobe_phantom()
        segmentationNode, spectNode = self._phantomNodes(phantom)
        logic = LobeQuantLogic()
        _tn, ratio, _uptake, _trial = logic.computeTumourToNonTumour(segmentationNode, [(spectNode, 1, 24.0)],
                                                             "right")
        chart = logic.createTnChart(ratio)
        series = [chart.GetNthPlotSeriesNode(i) for i in range(chart.GetNumberOfPlotSeriesNodes())]
        self.assertEqual([s.GetName() for s in series], ["IA lobe (right)", "IV lobe (left)"])
        self.assertEqual([(s.GetXColumnName(), s.GetYColumnName()) for s in series],
                         [("cycle", "tn_mean_ia"), ("cycle", "tn_mean_iv")])
        self.assertTrue(all(s.GetTableNode() is ratio for s in series))
        refilled = logic.createTnChart(ratio, chart)
        self.assertIs(refilled, chart)
        self.assertEqual(chart.GetNumberOfPlotSeriesNodes(), 2)
        self.assertEqual(slicer.mrmlScene.GetNumberOfNodesByClass("vtkMRMLPlotSeriesNode"), 2)
        self.assertEqual(slicer.mrmlScene.GetNumberOfNodesByClass("vtkMRMLPlotChartNode"), 1)

    def test_second_apply_refills_the_same_nodes(self):
        """Apply twice into the same tables and chart: same IDs and node counts, values of the new SPECT.

        Doubling the SPECT doubles every concentration and activity exactly (x2 is exact in binary
        floating point) and leaves every T/N unchanged.
        """
        from LobeQuantLib.phantoms import SHAPE_ZYX, uniform_lobe_phantom

        from luprrt.segments import SegmentTags

        phantom = uniform_lobe_phantom()
        kidney = np.zeros(SHAPE_ZYX, dtype=bool)
        kidney[10:20, 33:36, 5:12] = True  # outside the liver box: uptake needs a kidney segment
        phantom.segmentation.add_segment(kidney, SegmentTags("kidney", side="right"))
        segmentationNode, spectNode = self._phantomNodes(phantom)
        logic = LobeQuantLogic()
        cycles = [(spectNode, 1, 24.0, 7400.0)]
        first = logic.computeTumourToNonTumour(segmentationNode, cycles, "right")
        self.assertIsNotNone(first[2])
        chart = logic.createTnChart(first[1])
        before = [[dict(r) for r in self._rows(table)] for table in first]
        ids = [node.GetID() for node in (*first, chart)]
        classes = ("vtkMRMLTableNode", "vtkMRMLPlotSeriesNode", "vtkMRMLPlotChartNode")
        counts = {c: slicer.mrmlScene.GetNumberOfNodesByClass(c) for c in classes}
        seriesIds = [chart.GetNthPlotSeriesNodeID(i) for i in range(chart.GetNumberOfPlotSeriesNodes())]

        mrml.update_volume_node_from_image(spectNode, phantom.spect * 2.0, units="Bq/mL")
        second = logic.computeTumourToNonTumour(segmentationNode, cycles, "right", tableNode=first[0],
                                                ratioTableNode=first[1], uptakeTableNode=first[2],
                                                trialTableNode=first[3])
        refilled = logic.createTnChart(second[1], chart)
        self.assertEqual([node.GetID() for node in (*second, refilled)], ids)
        self.assertEqual({c: slicer.mrmlScene.GetNumberOfNodesByClass(c) for c in classes}, counts)
        self.assertEqual(counts, {"vtkMRMLTableNode": 4, "vtkMRMLPlotSeriesNode": 2, "vtkMRMLPlotChartNode": 1})
        self.assertEqual([s.GetName() for s in (slicer.mrmlScene.GetNodeByID(i) for i in seriesIds)
                          if s is not None], [])  # the first call's series left the scene
        self.assertEqual([refilled.GetNthPlotSeriesNode(i).GetName() for i in range(2)],
                         ["IA lobe (right)", "IV lobe (left)"])
        self.assertTrue(all(refilled.GetNthPlotSeriesNode(i).GetTableNode() is first[1] for i in range(2)))
        tnBefore, ratioBefore, uptakeBefore, _ = before
        tnAfter, ratioAfter, uptakeAfter, _ = (self._rows(table) for table in second)
        self.assertEqual(len(tnAfter), len(tnBefore))
        for old, new in zip(tnBefore, tnAfter, strict=True):
            self.assertEqual((new["role"], new["side"], new["lesion_id"]), (old["role"], old["side"],
                                                                            old["lesion_id"]))
            self.assertEqual(new["mean_bq_per_ml"], 2.0 * old["mean_bq_per_ml"])
            if new["role"] in ("tumour", "lesion"):  # NaN for lobe and non-tumour rows
                self.assertEqual((new["tn_mean"], new["tn_max"]), (old["tn_mean"], old["tn_max"]))
        self.assertEqual([r["tn_mean_ia_over_iv"] for r in ratioAfter],
                         [r["tn_mean_ia_over_iv"] for r in ratioBefore])
        for old, new in zip(uptakeBefore, uptakeAfter, strict=True):
            self.assertEqual(new["region"], old["region"])
            self.assertEqual(new["activity_mbq"], 2.0 * old["activity_mbq"])
        self.assertEqual(second[0].GetName(), "LobeQuant T/N")
        self.assertEqual(second[0].GetColumnUnitLabel("mean_bq_per_ml"), "Bq/mL")
        self.assertEqual(second[0].GetAttribute(IA_SIDE_ATTRIBUTE), "right")

    def test_input_nodes_are_not_modified(self):
        from LobeQuantLib.phantoms import uniform_lobe_phantom


        segmentationNode, spectNode = self._phantomNodes(uniform_lobe_phantom(with_lobes=False))
        before = mrml.segmentation_from_segmentation_node(segmentationNode)
        values = np.array(slicer.util.arrayFromVolume(spectNode), copy=True)
        plane = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLMarkupsPlaneNode", "plane")
        plane.SetOriginWorld([0.0, 0.0, 0.0])
        plane.SetNormalWorld([1.0, 0.0, 0.0])
        logic = LobeQuantLogic()
        lobes = logic.splitLobes(segmentationNode, "plane", plane)
        routed = logic.assignRoutes(lobes, "left")
        logic.computeTumourToNonTumour(routed, [(spectNode, 1, 24.0)], "left", fractional=True)
        logic.detectLesionCandidates(spectNode, routed)
        after = mrml.segmentation_from_segmentation_node(segmentationNode)
        self.assertEqual([(s.segment_id, s.tags) for s in after.segments],
                         [(s.segment_id, s.tags) for s in before.segments])
        self.assertFalse(after.find(role="lobe"))
        for segment in before.segments:
            np.testing.assert_array_equal(after.mask_array(segment.segment_id),
                                          before.mask_array(segment.segment_id))
        np.testing.assert_array_equal(slicer.util.arrayFromVolume(spectNode), values)
        self.assertEqual(len(mrml.segmentation_from_segmentation_node(lobes).find(role="lobe")), 2)
        self.assertEqual(routed.GetAttribute(IA_SIDE_ATTRIBUTE), "left")

    def test_lesion_candidates_keep_the_tracking_ids(self):
        from LobeQuantLib.phantoms import LESIONS, VOXEL_ML, uniform_lobe_phantom

        phantom = uniform_lobe_phantom()
        segmentationNode, spectNode = self._phantomNodes(phantom)
        table = LobeQuantLogic().detectLesionCandidates(spectNode, segmentationNode, factor=3.0,
                                                        minVolumeMl=0.5)
        rows = self._rows(table)
        self.assertEqual({r["lesion_id"] for r in rows}, set(LESIONS))
        for r in rows:
            self.assertTrue(r["is_existing"])
            self.assertEqual(r["side"], LESIONS[r["lesion_id"]][3])
            volume = phantom.lesion_voxels[r["lesion_id"]] * VOXEL_ML
            self.assertAlmostEqual(r["volume_ml"], volume, delta=1e-9)
            self.assertAlmostEqual(r["max_bq_per_ml"], LESIONS[r["lesion_id"]][2], delta=1e-3)

    def test_cycles_table_and_csv_export(self):
        import tempfile

        from LobeQuantLib.phantoms import uniform_lobe_phantom

        from luprrt.tables import read_rows_csv

        segmentationNode, spectNode = self._phantomNodes(uniform_lobe_phantom())
        later = self._phantomNodes(uniform_lobe_phantom(scale=0.5), "cycle 2")[1]
        logic = LobeQuantLogic()
        table = logic.addCycle(None, spectNode, 1, 24.0, 7400.0)
        self.assertIs(logic.addCycle(table, later, 2, 96.0), table)
        self.assertEqual(logic.cyclesFromTable(table), [(spectNode, 1, 24.0, 7400.0), (later, 2, 96.0, None)])
        with self.assertRaisesRegex(ValueError, "cycle 2 already has a SPECT at 96 h"):
            logic.addCycle(table, later, 2, 96.0)
        tn, ratio, uptake, _trial = logic.computeTumourToNonTumour(segmentationNode, logic.cyclesFromTable(table),
                                                           "right")
        self.assertIsNone(uptake)  # cycle 2 has no administered activity
        logic.removeCycle(table, 0)
        self.assertEqual(logic.cyclesFromTable(table), [(later, 2, 96.0, None)])
        with tempfile.TemporaryDirectory() as folder:
            paths = logic.exportCsv(folder, tnTableNode=tn, ratioTableNode=ratio)
            self.assertEqual([p.name for p in paths], ["lobequant_tn.csv", "lobequant_ia_iv_ratio.csv"])
            rows = read_rows_csv(paths[1])
            self.assertEqual([r["cycle"] for r in rows], ["1", "2"])
            self.assertEqual(float(rows[1]["tn_mean_ia_over_iv"]), self._rows(ratio)[1]["tn_mean_ia_over_iv"])
            with self.assertRaisesRegex(FileExistsError, "lobequant_tn.csv"):
                logic.exportCsv(folder, tnTableNode=tn)

    def test_dicom_export_reports_the_tn_of_every_lesion(self):
        """SEG + TID 1500 SR from the panel's nodes: analytic lesion T/N read back exactly; lesion UIDs kept."""
        import importlib.util
        import tempfile
        from datetime import datetime

        if importlib.util.find_spec("highdicom") is None:
            self.skipTest("highdicom is not installed (in Slicer the Export DICOM button installs it; elsewhere the `dicom` extra)")
        from LobeQuantLib.phantoms import uniform_lobe_phantom

        from luprrt.io import read_dicom_seg, read_measurement_report, tracking_uid
        from luprrt.io.dicom_write import DicomPatient, new_uid, write_ct_series

        phantom = uniform_lobe_phantom()
        segmentationNode, spectNode = self._phantomNodes(phantom)
        logic = LobeQuantLogic()
        tn, ratio, _, _trial = logic.computeTumourToNonTumour(segmentationNode, [(spectNode, 1, 24.0, 7400.0)], "right")
        with tempfile.TemporaryDirectory() as folder:
            ct = Path(folder) / "ct"
            write_ct_series(sitk.Image(phantom.segmentation.reference) * 0, ct, patient=DicomPatient("LQ-DICOM"),
                            study_uid=new_uid(), frame_of_reference_uid=new_uid(),
                            acquisition_datetime=datetime(2024, 5, 6, 9, 0))
            paths = logic.exportDicom(Path(folder) / "out", segmentationNode, sorted(map(str, ct.iterdir())),
                                      tnTableNode=tn, ratioTableNode=ratio, iaSide="right")
            self.assertEqual(sorted(p.name for p in paths), ["seg.dcm", "sr.dcm"])
            records, _ = read_measurement_report(Path(folder) / "out" / "cycle1" / "sr.dcm")
            tnMean = {r.tracking_id: r.value for r in records if r.quantity == "tn_mean"}
            for lesionId, expected in phantom.lesion_tn.items():
                self.assertAlmostEqual(tnMean[lesionId], expected, delta=1e-9 * expected)
                uid = next(r.tracking_uid for r in records if r.tracking_id == lesionId)
                self.assertEqual(uid, tracking_uid("LQ-DICOM", lesionId))
            seg = read_dicom_seg(Path(folder) / "out" / "cycle1" / "seg.dcm")
            self.assertEqual({s.tags.route for s in seg.find(role="lobe")}, {"IA", "IV"})
            with self.assertRaises(FileExistsError):
                logic.exportDicom(Path(folder) / "out", segmentationNode, sorted(map(str, ct.iterdir())), tn)

    def test_bad_inputs_raise_clear_errors(self):
        from LobeQuantLib.phantoms import uniform_lobe_phantom


        segmentationNode, spectNode = self._phantomNodes(uniform_lobe_phantom(with_lobes=False))
        logic = LobeQuantLogic()
        with self.assertRaisesRegex(ValueError, "phantom segmentation.*no lobe segments"):
            logic.computeTumourToNonTumour(segmentationNode, [(spectNode, 1, 24.0)], "right")
        with self.assertRaisesRegex(ValueError, "IA side is missing"):
            logic.assignRoutes(segmentationNode, None)
        counts = mrml.volume_node_from_image(uniform_lobe_phantom().spect, "raw counts", units="counts")
        with self.assertRaisesRegex(ValueError, "SPECT 'raw counts' is in counts, not Bq/mL"):
            logic.addCycle(None, counts, 1, 24.0)
        with self.assertRaisesRegex(ValueError, "Cantlie's plane needs 3"):
            points = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", "two points")
            points.AddControlPoint(vtk.vtkVector3d(0, 0, 0))
            points.AddControlPoint(vtk.vtkVector3d(0, 10, 0))
            logic.splitLobes(segmentationNode, "plane", points)
        with self.assertRaisesRegex(ValueError, "does not cut the liver"):
            plane = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLMarkupsPlaneNode", "far plane")
            plane.SetOriginWorld([500.0, 0.0, 0.0])
            plane.SetNormalWorld([1.0, 0.0, 0.0])
            logic.splitLobes(segmentationNode, "plane", plane)
        shifted = uniform_lobe_phantom().spect
        shifted.SetOrigin((0.0, 0.0, 2000.0))
        farNode = mrml.volume_node_from_image(shifted, "far SPECT", units="Bq/mL")
        lobed = self._phantomNodes(uniform_lobe_phantom(), "lobed")[0]
        with self.assertRaisesRegex(ValueError, "SPECT 'far SPECT': geometry mismatch"):
            logic.computeTumourToNonTumour(lobed, [(farNode, 1, 24.0)], "right")

    def test_site_calibration_corrects_tn(self):
        """A recovery table (volume_ml, rc) as site calibration: corrected lesion and lobe T/N against the truth."""
        import tempfile

        from luprrt.calibration import OccupancyAutocorrelation
        from luprrt.phantom import IEC_SPHERE_DIAMETERS_MM, make_patient, phantom_grid, sphere_occupancy

        # 1. The recovery of the IEC spheres under the camera's 10 mm Gaussian blur on the 4.42 mm SPECT grid
        #    (the occupancy-weighted mean of each blurred sphere: what the phantom would measure), as a table.
        fwhm, spacing = 10.0, 4.42
        grid = phantom_grid(spacing, (60.0, 60.0, 60.0))
        lines = ["volume_ml,rc"]
        for diameter in IEC_SPHERE_DIAMETERS_MM:
            _, occupancy = sphere_occupancy(grid, (0.0, 0.0, 0.0), diameter / 2.0)
            recovery = OccupancyAutocorrelation(occupancy, (spacing,) * 3).contrast_recovery(fwhm)
            lines.append(f"{math.pi * diameter**3 / 6000.0},{recovery}")

        # 2. A patient imaged with that blur; T/N with and without the table.
        patient = make_patient(3, small=True, n_cycles=1, hours_post_injection=(24.0,), spect_fwhm_mm=fwhm,
                               followup_weeks=())
        session = patient.sessions[0]
        spectNode = mrml.volume_node_from_image(session.spect[0].image, "SPECT 24 h", units="Bq/mL")
        segmentationNode = mrml.segmentation_node_from_segmentation(session.segmentation, "Segmentation")
        logic = LobeQuantLogic()
        with tempfile.TemporaryDirectory() as folder:
            table = Path(folder) / "recovery.csv"
            table.write_text("\n".join(lines) + "\n", encoding="utf-8")
            tn, ratio, _uptake, trial = logic.computeTumourToNonTumour(
                segmentationNode, [(spectNode, 1, 24.0)], patient.ia_side, calibrationFile=table,
                boundaryUncertainty=False)

        # 3. Against the truth: lesions of 20 mm and more within 10 %, the IA/IV lobe ratio within 5 %.
        point = patient.truth.time_point(1, 24.0)
        rows = {r["lesion_id"]: r for r in self._rows(tn, "lesion")}
        for lesion in patient.truth.lesions:
            if lesion.diameter_mm["cycle1"] >= 20.0:
                row, true = rows[lesion.lesion_id], point.tn_ratio[lesion.lesion_id]
                self.assertAlmostEqual(row["tn_mean_corrected"] / true, 1.0, delta=0.10)
                self.assertLess(row["tn_mean"], 0.85 * true)
                self.assertLess(row["tn_mean_corrected_ci95_low"], row["tn_mean_corrected"])
        volumes = patient.truth.volumes_ml["cycle1"]

        def lobeTn(side):
            lesions = [le.lesion_id for le in patient.truth.lesions if le.side == side]
            concentration = sum(point.activity_mbq[i] for i in lesions) / sum(volumes[i] for i in lesions) * 1e6
            return concentration / point.mean_bq_per_ml[f"nontumour_{side}"]

        ratioRow = self._rows(ratio)[0]
        self.assertAlmostEqual(ratioRow["tn_mean_corrected_ia_over_iv"] / (lobeTn(patient.ia_side)
                                                                         / lobeTn(patient.iv_side)), 1.0,
                               delta=0.05)
        self.assertEqual(tn.GetAttribute("LuPRRT.Calibration"), "recovery.csv")
        self.assertIn("effective FWHM", tn.GetAttribute("LuPRRT.MarginRule"))
        targets = {r["side"]: r["n_targets"] for r in self._rows(trial)}
        big = {side: sum(1 for le in patient.truth.lesions if le.side == side and le.diameter_mm["cycle1"] > 30.0)
               for side in ("right", "left")}
        self.assertEqual(targets, {side: min(n, 3) for side, n in big.items()})
        self.assertTrue(math.isfinite(ratioRow["tn_mean_corrected_targets_ia_over_iv"]))
