//! Model cards for networks of the data sets unseen knows (MNIST, Fashion-MNIST).

use unseen_model::{Architecture, ModelCard, Normalization};

use crate::digits::DatasetKind;

/// A card for weights of `arch` on `dataset`, without provenance or metrics: the data set's
/// class names, and `normalization` (the data set's mean and deviation when `None`).
pub fn dataset_card(
    arch: Architecture,
    dataset: DatasetKind,
    normalization: Option<Normalization>,
) -> ModelCard {
    let (mean, std) = dataset.normalization();
    let mut card = ModelCard::new(
        arch,
        dataset.classes().iter().map(|c| c.to_string()).collect(),
        normalization.unwrap_or(Normalization::scalar(mean, std)),
    );
    card.dataset = Some(dataset.dir_name().to_string());
    card
}

/// The data set a card names, if unseen knows it.
pub fn card_dataset(card: &ModelCard) -> Option<DatasetKind> {
    card.dataset.as_deref().and_then(|d| d.parse().ok())
}
