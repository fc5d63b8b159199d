"""The registry of real image datasets: what each one is, how big, under which terms, how it is laid out.

:data:`REGISTRY` maps a name to a :class:`DatasetInfo` (URLs with their checksums from
:mod:`rcl.datasets.sources`, size, licence, citation, description, layout); :func:`get_info` looks one up
and :func:`describe` prints the registry as a table (``python -m rcl datasets list``).

Layer: evaluation (imports :mod:`rcl.datasets.sources` only).
"""

from __future__ import annotations

from dataclasses import dataclass

from rcl.datasets.sources import (
    BSDS500,
    CBSD68_URL,
    EDSR_BENCHMARK,
    KODAK_SHA256,
    KODAK_URL,
    MCMASTER_URL,
    TASKONOMY_TINY,
    TASKONOMY_URL,
    mit_demosaic_urls,
)

__all__ = ["REGISTRY", "DatasetInfo", "describe", "describe_records", "get_info"]


@dataclass(frozen=True)
class DatasetInfo:
    """One dataset: where to get it, how big it is, under which terms, and how it is laid out.

    ``urls`` is a tuple of ``(url, known_hash)`` pairs; ``known_hash`` is in pooch form
    (``"md5:..."`` or ``"sha256:..."``) or ``None`` where no checksum is published.
    ``licence`` is the terms of use as stated by the dataset's authors or distributor;
    ``layout`` describes what :func:`download` puts in ``train/`` and ``test/``.
    """

    name: str
    title: str
    urls: tuple[tuple[str, str | None], ...]
    size: str
    licence: str
    citation: str
    description: str
    layout: str
    homepage: str = ""

    @property
    def verified(self) -> bool:
        """True when every URL has a known checksum."""
        return all(h is not None for _, h in self.urls)


REGISTRY: dict[str, DatasetInfo] = {
    "bsds500": DatasetInfo(
        name="bsds500",
        title="Berkeley Segmentation Dataset 500 (BSDS500)",
        urls=(BSDS500,),
        size="about 70 MB download (the authors' GitHub repository, annotations included)",
        licence=(
            "Free to download for non-commercial research and educational purposes "
            "(Berkeley segmentation benchmark download page)."
        ),
        citation=(
            "Arbelaez, Maire, Fowlkes & Malik, Contour Detection and Hierarchical Image "
            "Segmentation, IEEE TPAMI 33(5), 2011; Martin et al., ICCV 2001."
        ),
        description=(
            "500 natural 481x321 (or 321x481) colour photographs with human segmentations; only the "
            "JPEG images are used. The archive is GitHub's zip of the master branch of BIDS/BSDS500, "
            "hashed by deepinv; GitHub generates such archives on the fly, so a re-generated archive "
            "(or a moved branch) fails the md5 check rather than being used. No checksum of a "
            "fixed-commit archive is published."
        ),
        layout=(
            "Archive: BSDS500-master/BSDS500/data/images/{train,val,test}/*.jpg (200/100/200). "
            "train/ = train + val (300 jpg, the authors' 'trainval'); test/ = test (200 jpg). "
            "The 68 CBSD68 images are a subset of val, i.e. of train/ here."
        ),
        homepage="https://www2.eecs.berkeley.edu/Research/Projects/CS/vision/grouping/resources.html",
    ),
    "div2k": DatasetInfo(
        name="div2k",
        title="DIV2K high-resolution images (NTIRE 2017)",
        urls=(
            (
                "https://data.vision.ee.ethz.ch/cvl/DIV2K/DIV2K_train_HR.zip",
                "sha256:9d0b9c463f6e35b6c62cc6a930ee2224f670b34c1df841a57670f9acf0f6c335",
            ),
            (
                "https://data.vision.ee.ethz.ch/cvl/DIV2K/DIV2K_valid_HR.zip",
                "sha256:20dd31fd84d777bc1cf5d6b7654a3f569c0aec74458ae094122ad1d0489900fc",
            ),
        ),
        size="4.0 GB download (3,530,603,713 + 448,993,893 bytes)",
        licence="Academic research use only (DIV2K website, CVL ETH Zurich).",
        citation=(
            "Agustsson & Timofte, NTIRE 2017 Challenge on Single Image Super-Resolution: "
            "Dataset and Study, CVPR Workshops 2017."
        ),
        description=(
            "900 diverse 2K-resolution RGB PNG photographs (800 training, 100 validation); only the "
            "high-resolution ground truth is fetched."
        ),
        layout=(
            "Archives: DIV2K_train_HR/0001.png ... 0800.png and DIV2K_valid_HR/0801.png ... 0900.png. "
            "train/ = the 800 training images; test/ = the 100 validation images."
        ),
        homepage="https://data.vision.ee.ethz.ch/cvl/DIV2K/",
    ),
    "kodak24": DatasetInfo(
        name="kodak24",
        title="Kodak Lossless True Color Image Suite (Kodak24)",
        urls=tuple((KODAK_URL.format(i + 1), f"sha256:{digest}") for i, digest in enumerate(KODAK_SHA256)),
        size="15 MB download (24 PNG files, 15,394,305 bytes)",
        licence=(
            "No formal licence; the distributor (r0k.us) states that the images were released by "
            "the Eastman Kodak Company for unrestricted usage."
        ),
        citation="Eastman Kodak Company, Kodak Lossless True Color Image Suite (PhotoCD PCD0992), 1993.",
        description=(
            "24 lossless 768x512 (or 512x768) 24-bit colour photographs, a standard test set for "
            "denoising and compression. Fetched file by file."
        ),
        layout=(
            "Files kodim01.png ... kodim24.png. All 24 go to test/; there is no train/ folder "
            "(Kodak24 is a test set only)."
        ),
        homepage="https://r0k.us/graphics/kodak/",
    ),
    "voc2012": DatasetInfo(
        name="voc2012",
        title="PASCAL Visual Object Classes 2012 (train+val)",
        urls=(
            (
                "https://thor.robots.ox.ac.uk/pascal/VOC/voc2012/VOCtrainval_11-May-2012.tar",
                "md5:6cd6e144f989b92b3379bac3b3de84fd",
            ),
        ),
        size="2.0 GB download (tar)",
        licence=(
            "Images come from Flickr; their use must respect Flickr's terms of use "
            "(PASCAL VOC 2012 website). Annotations are the VOC organisers'."
        ),
        citation=(
            "Everingham, Van Gool, Williams, Winn & Zisserman, The PASCAL Visual Object Classes "
            "(VOC) Challenge, IJCV 88(2), 2010."
        ),
        description=(
            "17,125 JPEG photographs of everyday scenes (the VOC2012 trainval release; the test set "
            "is not public). URL and md5 are torchvision's own (VOCSegmentation/VOCDetection), "
            "fetched here through pooch so that the hash check and layout match the other datasets."
        ),
        layout=(
            "Archive: VOCdevkit/VOC2012/JPEGImages/*.jpg with split lists in ImageSets/Main/. "
            "train/ = the 5,717 images of ImageSets/Main/train.txt; test/ = the 5,823 images of "
            "ImageSets/Main/val.txt."
        ),
        homepage="http://host.robots.ox.ac.uk/pascal/VOC/voc2012/",
    ),
    "mit-demosaic": DatasetInfo(
        name="mit-demosaic",
        title="MIT/Adobe demosaicking dataset (Gharbi et al. 2016)",
        urls=mit_demosaic_urls(),
        size="about 80 GB download (a zip split into 334 parts) and as much again while joining",
        licence=(
            "No dataset licence is stated in the authors' public code (demosaicnet is MIT-licensed "
            "code); see the dataset page before redistributing the images."
        ),
        citation=(
            "Gharbi, Chaurasia, Paris & Durand, Deep Joint Demosaicking and Denoising, "
            "ACM TOG 35(6) (SIGGRAPH Asia), 2016."
        ),
        description=(
            "Millions of 128x128 RGB patches mined for demosaicking difficulty (the 'hdrvdp' and "
            "'moire' sets). Joining the split zip needs the Info-ZIP 'zip' program on PATH."
        ),
        layout=(
            "Archive: images/{train,val,test}/ (each with a filelist.txt; patches in sub-folders). "
            "train/, val/ and test/ hold every PNG of the matching folder, flattened: a file "
            "a/b/c.png becomes a__b__c.png."
        ),
        homepage="https://groups.csail.mit.edu/graphics/demosaicnet/",
    ),
    "taskonomy": DatasetInfo(
        name="taskonomy",
        title="Stanford Taskonomy RGB images, 'tiny' split",
        urls=tuple(
            (TASKONOMY_URL.format(b), None)
            for split in ("train", "val", "test")
            for b in TASKONOMY_TINY[split]
        ),
        size="not published; several GB per building, tens of GB for the 34 buildings",
        licence=(
            "Omnidata/Taskonomy Dataset Research Terms: use only for non-commercial research or "
            "educational purposes (StanfordVL/taskonomy, data/LICENSE)."
        ),
        citation=(
            "Zamir, Sax, Shen, Guibas, Malik & Savarese, Taskonomy: Disentangling Task Transfer "
            "Learning, CVPR 2018."
        ),
        description=(
            "512x512 RGB renders of indoor scenes, one tar per building, from the smallest public "
            "split ('tiny': 24 of its 25 train, 5 val, 5 test buildings). UNVERIFIED: no checksum "
            "for these tars is published outside the download server itself, so download() refuses "
            "unless called with allow_unverified=True. The 1024x1024 'rgb_large' images are not "
            "in this registry (no public URL for them was found)."
        ),
        layout=(
            "Archives: <building>_rgb.tar, each holding rgb/point_<p>_view_<v>_domain_rgb.png. "
            "train/, val/ and test/ hold the PNGs of the buildings of that split, renamed "
            "<building>__<file>.png (file names repeat across buildings)."
        ),
        homepage="https://github.com/StanfordVL/taskonomy/tree/master/data",
    ),
    "cbsd68": DatasetInfo(
        name="cbsd68",
        title="Color BSD68 (CBSD68) denoising test set",
        urls=((CBSD68_URL, None),),
        size="20 MB download (CBSD68.tar.gz, 19.7 MB as listed on Hugging Face)",
        licence=(
            "The images are BSDS300 photographs: free for non-commercial research and educational "
            "purposes (Berkeley segmentation benchmark download page). No separate licence was "
            "found for deepinv's Hugging Face repackaging."
        ),
        citation=(
            "Roth & Black, Fields of Experts, IJCV 82(2), 2009 (the 68-image BSD68 test set); "
            "Martin, Fowlkes, Tal & Malik, ICCV 2001 (the BSDS images)."
        ),
        description=(
            "The 68 colour BSDS300 test images of Roth & Black's BSD68 set, 481x321 or 321x481 "
            "PNGs, the usual colour-denoising benchmark. UNVERIFIED: no checksum of any CBSD68 "
            "archive is published, so download() refuses unless called with allow_unverified=True "
            "(the URL is pinned to one Hugging Face revision). The images are also in bsds500's "
            "train/ (BSDS500 val), so do not test on cbsd68 a model trained on bsds500."
        ),
        layout=(
            "Archive: a WebDataset shard holding CBSD68/0/0000.png ... 0067.png. All 68 go to "
            "test/ under their file names; there is no train/ folder (CBSD68 is a test set only)."
        ),
        homepage="https://huggingface.co/datasets/deepinv/CBSD68",
    ),
    "mcmaster": DatasetInfo(
        name="mcmaster",
        title="McMaster (McM) colour demosaicking test set",
        urls=((MCMASTER_URL, None),),
        size="small: 18 TIFFs of 500x500 (about 13.5 MB of pixels); the archive size is not published",
        licence=(
            "No licence text found; distributed by the authors on their PolyU dataset page, which "
            "gives the archive's password."
        ),
        citation=(
            "Zhang, Wu, Buades & Li, Color demosaicking by local directional interpolation and "
            "nonlocal adaptive thresholding, Journal of Electronic Imaging 20(2), 2011."
        ),
        description=(
            "18 colour images of 500x500 cropped from high-resolution scans, with saturated colours "
            "and sharp colour edges; a standard demosaicking and colour-denoising test set. "
            "UNVERIFIED: no checksum of McM.zip is published, so download() refuses unless called "
            "with allow_unverified=True. The zip is encrypted (ZipCrypto) with the password from "
            "the dataset page, which download() supplies."
        ),
        layout=(
            "Archive (password McM_CDM): McM/1.tif ... 18.tif. All 18 go to test/ under their file "
            "names; there is no train/ folder (McMaster is a test set only)."
        ),
        homepage="https://www4.comp.polyu.edu.hk/~cslzhang/CDM_Dataset.htm",
    ),
    "set14": DatasetInfo(
        name="set14",
        title="Set14 (high-resolution images)",
        urls=(EDSR_BENCHMARK,),
        size=(
            "about 250 MB download (the EDSR benchmark.tar of Set5, Set14, B100 and Urban100, of "
            "which only Set14/HR is used)"
        ),
        licence=(
            "No licence stated. Classic test images of mixed origin (e.g. Lenna, Baboon, Barbara), "
            "some with their own copyright history; redistributed by the EDSR authors (SNU) for "
            "super-resolution benchmarking."
        ),
        citation=(
            "Zeyde, Elad & Protter, On Single Image Scale-Up Using Sparse-Representations, Curves "
            "and Surfaces 2010; archive from Lim et al., EDSR, CVPR Workshops 2017."
        ),
        description=(
            "14 PNGs of various sizes (276x276 to 512x768 according to deepinv's Set14HR), e.g. "
            "baboon, barbara, comic, lenna, zebra; a standard super-resolution and restoration test "
            "set. The archive is the same file as urban100's, fetched into each dataset's own folder."
        ),
        layout=(
            "Archive: benchmark/Set14/HR/*.png (plus LR_bicubic/X2..X4 and the other sets, not "
            "used). All 14 HR images go to test/; there is no train/ folder (Set14 is a test set "
            "only)."
        ),
        homepage="https://github.com/sanghyun-son/EDSR-PyTorch",
    ),
    "urban100": DatasetInfo(
        name="urban100",
        title="Urban100 (high-resolution images)",
        urls=(EDSR_BENCHMARK,),
        size=(
            "about 250 MB download (the EDSR benchmark.tar of Set5, Set14, B100 and Urban100, of "
            "which only Urban100/HR is used)"
        ),
        licence=(
            "No licence stated by the authors; the images were collected from Flickr, whose terms "
            "apply to each image. Redistributed by the EDSR authors (SNU); the eugenesiow/Urban100 "
            "Hugging Face card labels its copy CC-BY-4.0."
        ),
        citation=(
            "Huang, Singh & Ahuja, Single Image Super-Resolution from Transformed Self-Exemplars, "
            "CVPR 2015; archive from Lim et al., EDSR, CVPR Workshops 2017."
        ),
        description=(
            "100 colour PNGs of urban scenes (buildings, regular structures), typically about 1024 px "
            "on the longer side; a standard super-resolution and restoration test set. The archive "
            "is the same file as set14's, fetched into each dataset's own folder."
        ),
        layout=(
            "Archive: benchmark/Urban100/HR/*.png (plus LR_bicubic/X2..X4 and the other sets, not "
            "used). All 100 HR images go to test/; there is no train/ folder (Urban100 is a test "
            "set only)."
        ),
        homepage="https://github.com/jbhuang0604/SelfExSR",
    ),
}


def get_info(name: str) -> DatasetInfo:
    """The registry entry for ``name``; ``ValueError`` listing the valid names if there is none."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown dataset {name!r}; valid names: {sorted(REGISTRY)}") from None


def describe_records() -> list[dict[str, str]]:
    """One dict per dataset (name, title, size, licence, checksums), e.g. for a DataFrame."""
    records = []
    for info in REGISTRY.values():
        n_missing = sum(h is None for _, h in info.urls)
        checks = "all files" if n_missing == 0 else f"none for {n_missing} of {len(info.urls)} files"
        records.append(
            {"name": info.name, "title": info.title, "size": info.size, "licence": info.licence,
             "checksums": checks}
        )  # fmt: skip
    return records


def describe() -> str:
    """The registry as a Markdown table: name, title, size, licence, checksums."""
    records = describe_records()
    cols = ("name", "title", "size", "licence", "checksums")

    def cell(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(cell(r[c]) for c in cols) + " |" for r in records]
    return "\n".join(lines)
