"""Training a spec's network: the recipe's torch objects (:mod:`.recipe`), ImageFolder data
(:mod:`.data`), checkpoints (:mod:`.checkpoint`) and the loop behind ``archc train``, on one
process or many under torchrun (:mod:`.loop`). Imports torch and torchvision."""
