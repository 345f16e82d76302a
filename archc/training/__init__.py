"""Training a spec's network: the recipe's torch objects (:mod:`.recipe`), ImageFolder data
(:mod:`.data`), checkpoints (:mod:`.checkpoint`), the run directory (:mod:`.rundir`), what
makes a resumed run the same run (:mod:`.identity`), weights from elsewhere (:mod:`.weights`),
the checks and objects before the first step (:mod:`.setup`), one epoch (:mod:`.epoch`), the
loop behind ``archc train`` on one process or many under torchrun (:mod:`.loop`), and
``archc eval`` (:mod:`.evaluate`). Imports torch and torchvision."""
