"""Where each registered dataset comes from: its URLs, their published checksums, and the split lists.

All of them are public; nothing here was hashed by us:

* ``bsds500`` -- GitHub archive of the authors' ``BIDS/BSDS500`` repository and its md5, as used by
  deepinv (``deepinv/datasets/bsds500.py``). Licence text: the BSDS download page (segbench). The URL
  names a branch, not a commit; see :data:`BSDS500` for why it stays so and what pins it.
* ``div2k`` -- URLs and sha256 of ``DIV2K_train_HR.zip`` / ``DIV2K_valid_HR.zip`` from TensorFlow
  Datasets (``tensorflow_datasets/datasets/div2k/checksums.tsv``, identical in
  ``tensorflow_datasets/url_checksums/div2k.txt``). deepinv (``deepinv/datasets/div2k.py``) hashes the
  extracted folders only, not the archives.
* ``kodak24`` -- the r0k.us PNGs (the page the Kodak suite is usually cited from) and their sha256,
  pinned identically by several independent public repositories (e.g. a JPEG 2000 benchmark's corpus
  recipe and a Python Kodak manifest); the 24 values were compared line by line between two of them.
* ``voc2012`` -- URL and md5 of ``VOCtrainval_11-May-2012.tar`` as held by torchvision
  (``torchvision/datasets/voc.py``, ``DATASET_YEAR_DICT["2012"]``); the test suite checks that they
  still agree with the installed torchvision.
* ``mit-demosaic`` -- the 334-part split zip on data.csail.mit.edu and the md5 of every part, from
  Gharbi's ``demosaicnet`` package (``demosaicnet/dataset.py``, ``CHECKSUMS``; same values on GitHub
  ``mgharbi/demosaicnet`` and in the PyPI sdist 0.0.13). The older ``demosaicnet_caffe`` script lists a
  different, 41-part release; that one is not used.
* ``taskonomy`` -- per-building ``<building>_rgb.tar`` on datasets.epfl.ch, the URL scheme of the
  Omnidata download tool (``EPFL-VILAB/omnidata``, ``omnidata_tools/dataset/starter_dataset``); the
  "tiny" building split is that of ``StanfordVL/taskonomy`` (``data/assets/splits_taskonomy.zip``, 25
  train / 5 val / 5 test buildings). The md5 sums live only in a file on the same server
  (``md5sum.txt``), not in any public source, so these entries carry no hash and :func:`rcl.datasets.download`
  refuses them unless ``allow_unverified=True``.
* ``set14``, ``urban100`` -- the EDSR authors' ``benchmark.tar`` on cv.snu.ac.kr (Set5, Set14, B100
  and Urban100, HR and bicubic LR) and its md5, from torchSR (``Coloquinte/torchSR``,
  ``torchsr/datasets/benchmarks.py``, classes ``Set14`` and ``Urban100``; the same URL and md5 are in
  the PyPI wheel ``torchsr-1.0.4``). deepinv (``deepinv/datasets/set14.py``, ``urban100.py``) fetches
  other copies (Box, Hugging Face) but hashes only the extracted folders, not the archives, so its
  md5 values cannot check a download.
* ``cbsd68`` -- ``CBSD68.tar.gz`` of the ``deepinv/CBSD68`` Hugging Face dataset, pinned to revision
  ``6b07c98054171f0d21684369335a286256c789ac``: the copy that deepinv (``deepinv/datasets/cbsd68.py``)
  loads. deepinv's md5 is of the Arrow file that its own ``save_to_disk`` writes, not of anything
  fetched, and no published checksum of this (or any other) CBSD68 archive was found, so the entry
  carries no hash and :func:`rcl.datasets.download` refuses it unless ``allow_unverified=True``.
* ``mcmaster`` -- ``McM.zip`` on the authors' PolyU page and its password (``McM_CDM``, given on that
  page), as used by deepinv (``deepinv/datasets/mcmaster.py``). deepinv's md5 is of the extracted
  ``McM`` folder only; no published checksum of the zip was found, so the entry carries no hash and
  :func:`rcl.datasets.download` refuses it unless ``allow_unverified=True``.

Layer: evaluation (data only: imports nothing).
"""

from __future__ import annotations

__all__ = [
    "BSDS500",
    "CBSD68_URL",
    "EDSR_BENCHMARK",
    "KODAK_SHA256",
    "KODAK_URL",
    "MCMASTER_PASSWORD",
    "MCMASTER_URL",
    "TASKONOMY_TINY",
    "TASKONOMY_URL",
    "mit_demosaic_urls",
]

#: GitHub's zip of the master branch of BIDS/BSDS500 and deepinv's md5 of it. The md5 is what pins the
#: bytes: if GitHub regenerates the archive differently, or the branch moves, the check fails and
#: nothing is extracted. The fixed-commit form (``.../archive/<commit>.zip``) would be better, but its
#: bytes differ (its top folder is ``BSDS500-<commit>``, not ``BSDS500-master``), so it needs a checksum
#: of its own, and no public source gives one; no sha256 of either archive is published. Switching needs
#: one download of the commit archive to hash it (the arrangement, ``**/BSDS500/data/images``, accepts
#: either top folder).
BSDS500 = ("https://github.com/BIDS/BSDS500/archive/refs/heads/master.zip", "md5:7bfe17302a219367694200a61ce8256c")

KODAK_URL = "https://r0k.us/graphics/kodak/kodak/kodim{:02d}.png"
KODAK_SHA256 = (
    "a56e27cbf5f843c048b6af1d6e090760e9c92fadba88b7dee0205918a37523bd",
    "4f4b74a79237e311d72cad958237b5f7088d8bce1c82305ebefe1a70e3022dfd",
    "e25ca1ff2f0c0cb5fdfd5f9b0a0bb21ac4c3de3c84a67f35b09a85d3306249db",
    "e3b946107c5d3441c022f678d0c3caf1e224d81b1604ba840a4f88e562de61aa",
    "10349e963c5c813d327852f82c1795fa4148d69fedffc4c589bee458e3ac3d53",
    "363510303b715d4cbc384e1ce227e466b613a09e1b71ae985882bf8e7fbd9b18",
    "b77d3f006f42414bb242222e0482e750c0fb9e5ee8d4bed2f6f11c5605fe54a4",
    "ba23983c76b4832ee0e8af0592664756841a16779acd69f792e268fb6d13d6e7",
    "6a4361c2fc194feb4edaa9f9a4a0620fb9943e460ac7fdf037fb0f6dd6607a7d",
    "9dfb70f5867c29ff9ed6313683f19b3d867849e40fbc0c4c54a4a89df341cf23",
    "7936814b58b5387fce2e4e2488b4ec830dadd95fa9520f358ddb30990b50f2b6",
    "d78c37c2f04f23761ed2367dd77e2db584ddd4c3950833fecf89f199a8126980",
    "bc34a3ce58dea09dce1704c997171602de90cb34d0c8503a988b77f473d39b08",
    "55a94550ff18f3246c4074fd32b77b0c74447c26b6ad274d564d999c0450ba6e",
    "7538cbb80cb9103606c48b806eae57d56c885c7f90b9b3be70a41160f9cbb683",
    "a89c7268ccd4718ba424a99fc4643c572cf692ca6eae887185ceb4e9f11d2e54",
    "37afcc89fbdcb76d9518e04b2fc011027e2f4cd14b3b2f83cefd721641a47c5b",
    "1a9258c365988961d87a0598725b609139c303ad48a5aad6c503c3b1a87849aa",
    "b7450b264b1b0a411390d8931b112c27905a992520fc90569dc4b920aa32bbdc",
    "3b46c71e3b92a563820ba32936be8330c586c41f938efd94be938386aae4328a",
    "ac958597c82073f6bb65129c68f72b651db5b9efd82e11547d07350214bc268b",
    "1cee58eb1f2d9c7ebb254d208a03c783ce6cf2c4d8c2cf45e235dd23b4ce1b29",
    "e3111a2fd4da24af15d6459ef9eacfe54106b38e27b4a21821b75c3f5d2d5baf",
    "1071c68372cc5a01435c2c225a5cf7d4bb803846ec08bb6b3d6721b156d7cb96",
)

MIT_DEMOSAIC_URL = "https://data.csail.mit.edu/graphics/demosaicnet/datasets.{}"
# md5 of every part of the split zip, as "<extension>=<md5>" (demosaicnet/dataset.py, CHECKSUMS).
MIT_DEMOSAIC_MD5 = """
z01=da46277afe85d3a91c065e4751fb8175 z02=e274a9646323d954b00094ea424e4e4c
z03=e071cc595a99a5aa4545d06350e5165f z04=c3d2f229834569cd5ae6e2d1467c4a95
z05=daf90136c7b1ee4bb4653e9b6bf4b67d z06=87e85d2854d40116e066b28e5a8750cc
z07=a0b2854bf025c87c0bfdf83ce9aa9055 z08=62125ccf29cd4b182dd81a4bb82f94c4
z09=f990f8a5090d586f2f31e61b5e6434bd z10=41ecf8d8b7d981604d661d258bf988db
z11=cff5b0e9950933fa9dd6ced8ffb9528f z12=17b70298245ae7965f4e4b4fb01f19cc
z13=7ec2aa595441d9f698a46d707f299e8c z14=08571b6629b8856813fb35b45bbc082c
z15=cc57e0c4466575436f670ac3e07ad2f3 z16=02c213b708e2ee7ebd68464dfb2279fc
z17=c92ae62205eaef02db27996f0dc6c282 z18=f55ddc31cf203f495e352182a5bbadc3
z19=6c34cd0e39a33737983ebf89f6cabf5f z20=4161d6eda0ca5ed9500f953f789a25b2
z21=8669b8bb9fa90628d4423c45648868b2 z22=0f90463abdc8f0f81d81249302cf2d09
z23=90ae2cdcdc1663b80c20e080e5c0e038 z24=00dcb2e2a72b15a9aa9a646ecaea0019
z25=5ae383bcd01d4ce22387680e28833f06 z26=5e0cdf281eeca969a4e0adfc44e11dcb
z27=c78804dfac1e395156abd235ca416b33 z28=0257b938256a2b7b55637970ebb3edcc
z29=e1240710e1c4dd506aec03c02caf5606 z30=75b0444187fc6c3df7bd3182108bc647
z31=04bee9374c7436d66f560bbbfc22299d z32=ab930ee97741da82bfc778474f528a28
z33=fff4585bf34e5a7ed8f369b337aac901 z34=39b5d53f995fa8c223ed0d7a2de34652
z35=ae351c1e2961f99a6d3ac37fbae27548 z36=c2102c4a984d03c32c7c99378df953dc
z37=76ba463895984049a1814654b7290890 z38=5481901e75ee9d55066ba2731b2f36b7
z39=59815df91b2532d1e300bc71c976da12 z40=321ebe9b7812c14ee185fe2d6f16300c
z41=862bc3fcb9fc1df2bef61561bcca8090 z42=10303d540fea2150a7574cefcec92977
z43=2269db3212f2d2db86982408a2b24948 z44=80673bdbd722d02d97febeca00e57cf1
z45=42329dbb5c5165788902f33265db66a3 z46=f81999194d418c515bb5df32c278d7f7
z47=2e3d3520636b5f3eb0cd2d649b6b4dab z48=e57e7aee104e80deaf068fbdd3292410
z49=36146291e4af0eff44e763e7e1facb4f z50=60ef115c5c621c757b9b7075d5590c20
z51=02326e4392d176c2aa6d479cf43f29f8 z52=b454f81ef7cda24cb13b8176c641d7ef
z53=95a4857fe7bc6230e6a3cc379085e989 z54=8ff35d1e9d738eb8b2afde04699ba73f
z55=75d19ea4a9a283b6d236e3353063d82d z56=2ec9121fb364cc76eaf6fe7ff947dd04
z57=f5d0b9b2b0a91f82dea784023f71cf3c z58=79e318093d97bd573cc7aab4ed68dd6d
z59=68350ada72cfc22d2d6fc8ca636ffef2 z60=1ff9d36ec2b3723253503d524c90c9df
z61=9fb963355e8c895c1a0a02fa45eb6fb2 z62=5900cdc6c3d5f4b0c05825b47946096a
z63=9d039ddf86aef563bf7834faa2766e84 z64=15decde2fb2b4f869684f88f067378c1
z65=7cf283ebffd79c38bc09835caba483e1 z66=e3b65f4facef36a355b444bd6b4ec73b
z67=b007466dd2ac3388a5902fdf92979b2d z68=c07cd3fbc9a99e8f4d3cc9bbc55682e0
z69=cff012a6a3af8a9f286cf68baf37ac73 z70=032ad7661e468723242b995357870a05
z71=fd7aa78706b8ae7ff50eb2f312a14ea5 z72=c2b90b8e8f75e36c927d523138d8ae93
z73=8c001e26b5f4ca0e061ff0b685d509c6 z74=484dcaf9311cc4315175e114acf01f32
z75=19f6896b426b99f34b99c88f3b68209f z76=4a64c040ba9aa6e455fee774a08873e5
z77=e96b1d94e51741ca916580c5f8287ef5 z78=e0f5c9d93a3a5cfd95eeb61ee322650d
z79=75fbea4391cd38d85c583c0f504325f1 z80=7a99d15beff97f2dc620300f5ea82506
z81=1e303b839a0349a8497eb6c49e3ab4c3 z82=48c23365901b8d9cb51a20f7c71fa0a7
z83=fed6445cb47f0b6cd6ed6f5482e38be7 z84=3d052276fc186ec151b5c237c5774e66
z85=d84dccdf4fd4e6f6126b746d0519d19d z86=772ab63f1ae266761db99124a152fc29
z87=44208b663adf97563018a416560cce6b z88=6be7aaff3349239507b103c928afeaf5
z89=515daa16bcaf83b0be91dcc32e0e4985 z90=f0fe0aa02bf0f19c0a7e301b532afa4c
z91=87fa807089240e01886389a6c4c77641 z92=1fd3154b3d8ec321f58f7685aedc5441
z93=b24ddb4b3e2c0c1c96d7650a8320e446 z94=b5e98cd90a629c4abb70d66a6976e0c7
z95=87c8d5d7f26e0fbf7422fda2194bef97 z96=bb18c027a71f326a33b0a8fbe2d3a11f
z97=0489ed1c8b4fb7d5965d1565076d5c6a z98=a85303e08ce59fdf28f36ae9d0f20dcb
z99=992e63e126f05eca9fa9a84bbf66165c z100=923a536ece64cd036eec4a13156531c8
z101=44a936558af2e830fdf65d9acb3960ab z102=b24870482b41200ab7b91f0bcd3ed718
z103=a85521c1fe0b8d2d1a074b0b52bf9db1 z104=aacc7a81ec9e9a7849e3a45b1cb12f7c
z105=19b62c0f0ae008b77df6465182f43dc4 z106=4b0c414ce5825a9e2249e5810f0e55f0
z107=7f6df7fea899a656fcde898225890daf z108=16a877c357f112367200a2534b5e54f3
z109=9180129bf9c204184f729bdf1c284c9c z110=a95a6fbfd32d90058b9e4b9f0645c646
z111=f3c7894a7d04178ca417dd5ed3a9e649 z112=d46a73703a72c07137424cad90c9c0bd
z113=04b3421e465c5ef8bd64fc23730b58f7 z114=9c31d2d94bd6f1ba321039b18c462175
z115=427a3a6f3f936b0ba435da35be3e4bc3 z116=c633a66e7644d7d8e8148d651b76d93f
z117=cf316d3acaf301fc7b2b7e250ef734dd z118=c3b53a604492499930dfd000d7d33fa4
z119=e64ede2179c589abd9e587347d9ba3b0 z120=ece09ee0bc30eab71f06716cca393029
z121=79db008803bf58593df6c32db8c0b3d0 z122=647b151eb30a44d123ce9ddfbb380094
z123=5065f755fe61c666d6ed28096e4047a3 z124=6306215855e30112c495291d5928e0b7
z125=a55c6e31e7ad42170016a15791e25134 z126=582eb81f0251840507ca0b53e624b1e0
z127=3beefb769a01481a8bc7ae39bc2f539b z128=fac96b38f96ea364ea51020386597b5d
z129=3aaca8ce2b67d2c1fe764ae2b306d17f z130=9f94105dcc39cf5421b2df2532c06ec9
z131=5de2901388a2e531d6874cdaf23bf15e z132=6851ed45004ae6864892532d1ad44b20
z133=0f6b417d57f9bdc9fa91d85ff5e3378d z134=0602b14c8828f7a9fed92713047c695f
z135=3ab79fd4da5c4c5b5a7896a189ec43a7 z136=dd05152db786d8189cdb419ac5d0018a
z137=b4e97abef22ee8b81ac232760d9f539d z138=4ce939f1fa4f3e110e989db07d53d33f
z139=a096add471cc5e074852c063eec3863a z140=3d84e8cc84ab26969c5239be60222ad3
z141=d77062f59ca9957d33c9a671657fd795 z142=82901d01917006348deb89aa37fe3629
z143=736f77856f0854b26fa951479691df8f z144=55c44320975f4278a8837085c5e02eda
z145=087d3b7634bf4720a916767d5c6b7d70 z146=5659d6f0495dcdc5f5d98bf2efaaa09b
z147=66dd69b2f9348e3c0d0c93c3e61416dd z148=f3fc8f15aceb0f9bf04d786b894caa44
z149=3863be1d2b130f79399432cfc1281c2e z150=09750f2019da9ff7132b904b8bcbd895
z151=b1573f086c0f7d1fdf249a8e3a9bb178 z152=1a2d4374aea1e22c0b676a6a7eac49ec
z153=b24320708d2019ed71ab16055e971b1d z154=7ba27e1946afa610e131f3afefe78326
z155=2f02c8b5470be4cb6b53e4c9e512394e z156=fa4f0977409f181820bf78174257d657
z157=6736b97a29d1393ec65ddc9376a06369 z158=b4b72842b13ec3877bc530ca2470a0db
z159=fa0dfa57c9d299175719bbbdf319c935 z160=6edbb9dc7fa6d12d2e21631ae14eaa8c
z161=4ab093ce5af2726e9ee71fdf1943e8e2 z162=4e21401db9f9884d953df20381c5fd97
z163=8d39f0ed1a1d9b5de22b583d00081522 z164=40fe425e2c5e89b87b44a6e9735590d5
z165=9552ff9b03e2dbb45befc9d1cc99ad81 z166=6c0098a36d6827aea846d8522c578751
z167=ce6b8b981d92f5a61f2ec40089a400a2 z168=60f6e16a3e5e409a3fc89edd3e0034d5
z169=75eb975a10d5cbf136796651a1789b42 z170=287966840fff015ed36da3a08a18ebfb
z171=e08193b722af492a78ac36a3125ac8d9 z172=32c795461f194c38b25047faeb46fdb5
z173=58fbb396dbbb902ac2f2c43722573200 z174=506fee2b982ee81689f3fe4d89133cac
z175=9d553e31b07b23e30c427800168eec6b z176=0f6e3048824ead093d3127434ac83a72
z177=ece15c004fa708849295987b8b1aba9c z178=d9db14d92d56ae2970798417030b5bb4
z179=25ddbe866d0a6b9cebe8d90f7b801fa6 z180=d2fc49c68c77d1da592aff4ab90c0915
z181=5a4a635b1f3535311c6caecf4ab3ba80 z182=df51725daff3edfc377a5f6bc158ec3a
z183=626add199ec4f263ff278d5392f41c9c z184=5069483fd064ee5e8c24a240e6ee7736
z185=589249e98db0a4ded1d3e4acefd07509 z186=e4415c64463ef16bceb9d2e2fa934d71
z187=e070cbaaf88a1085964244f6505c713c z188=71b38eb51edff8b049a302bacbe344d6
z189=8fa7a8b58c9e7cb9e86bfd0ca5f6d2ea z190=daad0ea7c87d0935e014a370c38cc926
z191=c355e9ee9d0afa67faa34739b7f7cf79 z192=c97d5a784625795cdf3c36c337986afe
z193=5f3b8425e215798c9e454cdbe586db90 z194=31b5d74c1cbbabbf58ee470467b40d12
z195=4c65958343bc2ea1a28e779ee7e5e498 z196=26ab3664e62c7fd5d0be673c45dd0d93
z197=32d690086b6e9f05e3ced3a126af870c z198=323071827db89626c9f186455fbb38c9
z199=72475a8500be1ff21407a66f0e2e91a6 z200=44a863b9c9760cb87a23f1422f242c0d
z201=dc38b455fa45e3ef0d5f06397507982e z202=b9ba231b317b008602f9472325b40e65
z203=36f4afc46258d80be626040956550028 z204=5c522fbdfe1f9d449c9189173f2ed2b2
z205=58d39995017eed2c4abcf9fcfd07e695 z206=2efdfc2abc834f0f0f1cabe10423f865
z207=04ead7536e5c13936c724f644ab1cb3a z208=9e3e0a02a07bebcc7cdb62a0ad047946
z209=c1fc44cd8b6f50955c8b3b317155ecb6 z210=210df79f8434bdb4e2a7d12c4078d972
z211=f078d2d8a14b6c59f58c67865bbc3334 z212=ef7d08a6cc39f6cb96b631ca61b440a0
z213=723057f7619d8820f142944f55f9542b z214=2ba38ca8561b51710f660c03f84c0eb1
z215=92a6e97dfaff295110ddead242ebe932 z216=05f40901ae70f73b3c099fcdd4ca945e
z217=b690ed3e8c6ba9f8bba9154d7e8f7ece z218=e290ca6f5573579df9f3aa7c5158891e
z219=a8e4626968f089163179f30066ce732c z220=3ecd2c0c855505d2957046d784944fce
z221=6c9c28287fbadcab2ce777ef3134e5d6 z222=29361a77f05e5e68113fc23e11b54b4d
z223=9214257b9a87c0037e88709addba8948 z224=7596a516fb7e308f33a81c5b3c36810a
z225=c1dc079f5261a976b1bd7f5c05cd4a02 z226=5b87815b0ccc5cacec83a399a52874aa
z227=6bed353dc50263b2c720af663c833bbc z228=37ed3574bf978bccd6e2db9be00bae94
z229=8fd57367808fd77581f998850e5f935a z230=3f5ef3234da0236d2fbfaf7366407d70
z231=f67d8320028620c8bdd9a800a78afa27 z232=5f831f25f8e8557168b38a7a28f8e7f9
z233=56ee8c4b01825ba7f12340ae8b990db3 z234=5428e98487b0e077cf9c24dc60599286
z235=883c0ea97facca4d57d5c9c54922e8be z236=e23fb6f610a3b528d5b310df4e452256
z237=bd858e84a47668edc851dab131239ae4 z238=db51bed3e3e5c6a40881f22532618533
z239=c1be852117739fc63227a503b08a8436 z240=f4e6da02349b03b4f433b3399dcf8b3c
z241=4f29898105aaf9f1a753a1c639947c2f z242=168a15bd8367f5d5f3e5e8cf4d0da6af
z243=2930bced33bd1ecabce070fc831567e7 z244=aed9c5ec05f57e3fa9e7b224d47fa7b0
z245=5aa83729fec805c166e48e5ec21530a5 z246=646ceabfae028d631568930b4056227a
z247=7381491175c1a63cc04ecac81148925b z248=4064df81449c1980d0abaa8c7262b315
z249=7ae84d1dde2e935d86138d1e7b077df8 z250=c018b41fbc4982a561b07cf0d52137f2
z251=9c9dc7a889d537fd1e02f4549529a5f1 z252=b74df0680e7a62794902186fe1e3fec2
z253=894cbb618ddffe65ce2ada0f250ad79c z254=d5d8bc590d109c7d592d4df183c495a8
z255=faf313a3edd70129c212d3dbd1de5042 z256=0fefcb84b66518df03a93ae53079409f
z257=887e8e8abaf09682903b9b1060fb8153 z258=a700ae13abb7707032123468fab1bf55
z259=cad7c974b832d27d1cfb4ae0e4dc6c3c z260=5e1c11df40440e4e84354d40efe7940e
z261=2a75579c238569356855244d9fedf50b z262=51d508271fef5558df387542b3561b67
z263=e11b54dcd5069e838a34dcc2daebf4b5 z264=8a5a3b288d21a3c2ef641370d436703e
z265=56954047cba7c8732f0490323540af43 z266=cad0325e494cc720c385ac7420acd2d7
z267=25de522b499ec7af12f583dd89a31769 z268=0e9882f392ca679e8c47276371384efd
z269=28487bc8eb731d4913254a9d63bb13ae z270=276fde25d412d8a1197e3dda307580d7
z271=ba6f46558aa9ebc64efca2485b4f18ca z272=5acceb08940d937d3023d98e745b8197
z273=57201a53390fe9c6a8c069397dcb81b8 z274=92491b6786ccea7b6ccccfb4e09c6d75
z275=349136c52b8554f03967d7083e5cd95c z276=1525075dbf4d5d101d63cdade8bed9e7
z277=eeb6365ef482cd2c6bac20aab8181081 z278=ab1b04860b27fc11b7f57074a0815877
z279=dc1cee0d4b69da9fd7aeb47f91768589 z280=d168adf5e7c223a1d8dddfc663ebaeb0
z281=540fc1de91a90e9bd91b3f2b590ddbf6 z282=f3fd6fbe05cfd53eb4a4c2e41bf75cc7
z283=20e89e60dd6a582bcb98b74df82699c3 z284=6e6ba6077437285881609999ead45463
z285=fdc4bad8adb36b3d6653a438f1fc000f z286=39c0f6fc7aace7e30a33e7e73afdb6ae
z287=e60818eefd7426f3de0cc0746550be7f z288=d9db9107b8e92c0bf6a311a219363554
z289=a250aa672d1f9165981cfaf1c6c8fff6 z290=6dcb5a7674c927ec4e965a42d04a0ccd
z291=c058fca515b7f714338816b72672ce20 z292=3fa254ed46ad6a6f7686836fe6fb7991
z293=782344c6620582d6b1681e142853a61e z294=5263c5eb50cfec20adf82a89973a7547
z295=0c217819aa7308ce8f744511e572a632 z296=cf8e7f1d3503ad6371ebcc9f827a29f8
z297=f16861471be342b291e55991654c882b z298=ceb8b1170f1f2ec8113ef1c004df236c
z299=4f66a50c5dfb03143a6456c7fd925ec1 z300=becbeea47cef192a1a13b35911c4795a
z301=92a67108c6bde11111f3b94f690f4b42 z302=06292210e05575cf1632a099648c16af
z303=ecb7a48777719322c957ecc99340f04a z304=b318fc0b7d645d16467b78bbce95befa
z305=5f83e6a17e5977c2b99fc29893a1f479 z306=dde2ec22363740081f54032a3add00e0
z307=e0b7f9a7eddf2117a6127542883eb767 z308=fff180911deaf4b476f42e6e47d78e6e
z309=c55a8ac017f7ea69e77519fbcc617301 z310=3b4282fd1ab2b4f885df196a83726d34
z311=08a7c41c5d290750d9ebf6266a86bec8 z312=b0f844ffd0ae6785e077ef8871dfc5da
z313=bd03ba03a63877b17274e21ddb828218 z314=392f4528f9c345355434e7448a80b28b
z315=e499cdf8acf1561720d4eb8f9ad9daad z316=2575496c4d9c5082c6c4ef2f0cedeb69
z317=6f387284dbef478e02f7a5954da66015 z318=2ea47b6b7c9790bbfc2d3c238ffba391
z319=8e1e48b2aa1d6c7ae840a23360a3a8f8 z320=a785b37410ccf0366f97c0d221faa629
z321=16c73037fa0ca7704a3c4ceddbd7d599 z322=af97027070cf5d057934dfd6bd819e61
z323=79078baf8d5fee935620f48aed2980a6 z324=987b626c8731b0092df593f0eaddb32a
z325=fcc9a289015b40044c55ca96bc3dbe1e z326=f2921b782a23f2729e1a6641e8c99954
z327=6d1b488d88cf0fcaf5105b6544e5ea66 z328=268885eaeb6290be4ddfaefb34943985
z329=3951d3dd0527b54c5302720ea037cb12 z330=4b546d783366442d95eed64f882ae9f6
z331=4605615511ea901c18256306263b2226 z332=4127b2a8dd549b02ce3e465cfcfcc0a3
z333=711d282247b4fd56758c96c13bfe1b8e zip=3434f60f5e9b263ef78e207b54e9debe
"""


def mit_demosaic_urls() -> tuple[tuple[str, str | None], ...]:
    pairs = [tok.split("=") for tok in MIT_DEMOSAIC_MD5.split()]
    # Parts in numeric order, then the final segment "datasets.zip" (holds the central directory).
    pairs.sort(key=lambda p: (p[0] == "zip", 0 if p[0] == "zip" else int(p[0][1:])))
    return tuple((MIT_DEMOSAIC_URL.format(ext), f"md5:{md5}") for ext, md5 in pairs)


TASKONOMY_URL = "https://datasets.epfl.ch/taskonomy/{}_rgb.tar"

#: The "tiny" split of Taskonomy (StanfordVL/taskonomy, data/assets/splits_taskonomy.zip): building
#: names per split. "woodbine" (tiny-train) is left out: the Omnidata download tool, the only public
#: way to fetch Taskonomy, lists it in ``forbidden_buildings`` and never downloads it.
TASKONOMY_TINY: dict[str, tuple[str, ...]] = {
    "train": (
        "allensville", "beechwood", "benevolence", "coffeen", "cosmos", "forkland", "hanson",
        "hiteman", "klickitat", "lakeville", "leonardo", "lindenwood", "marstons", "merom",
        "mifflinburg", "newfields", "onaga", "pinesdale", "pomaria", "ranchester", "shelbyville",
        "stockman", "tolstoy", "wainscott",
    ),
    "val": ("collierville", "corozal", "darden", "markleeville", "wiconisco"),
    "test": ("ihlen", "mcdade", "muleshoe", "noxapater", "uvalda"),
}  # fmt: skip

#: The EDSR authors' benchmark archive (Set5/Set14/B100/Urban100) and its md5 (torchSR,
#: torchsr/datasets/benchmarks.py). ``set14`` and ``urban100`` each fetch it into their own folder.
EDSR_BENCHMARK = ("https://cv.snu.ac.kr/research/EDSR/benchmark.tar", "md5:4ace41d33c2384b97e6b320cd0afd6ba")

#: deepinv's Hugging Face copy of CBSD68, pinned to the revision that holds ``CBSD68.tar.gz``.
CBSD68_URL = (
    "https://huggingface.co/datasets/deepinv/CBSD68/resolve/"
    "6b07c98054171f0d21684369335a286256c789ac/CBSD68.tar.gz"
)

MCMASTER_URL = "https://www4.comp.polyu.edu.hk/~cslzhang/DATA/McM.zip"
#: Password of McM.zip (ZipCrypto), published on the dataset page and in deepinv's McMaster class.
MCMASTER_PASSWORD = b"McM_CDM"
