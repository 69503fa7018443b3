//! image owns muelle's images: an OCI image layout under the data root
//! (`ROOT/image`, readable by other OCI tools) holding content-addressed
//! blobs, every layer unpacked once into a folder of its own and shared by
//! every image that has it, image records in the metadata store, overlay
//! root filesystems for containers, and images in and out as files.
//!
//! Every blob is untrusted until its digest is checked, and every layer is
//! untrusted input: nothing from an image writes outside the folder it is
//! unpacked into.

pub mod blobs;
pub mod digest;
pub mod error;
pub mod layers;
pub mod record;
pub mod reference;
pub mod rootfs;

pub use blobs::BlobStore;
pub use digest::Digest;
pub use error::{ImageError, Result};
pub use layers::{LayerForm, LayerStore, Unpacked};
pub use record::ImageRecord;
pub use reference::ImageRef;
pub use rootfs::{Driver, MountedRootfs, Rootfs};

// Manifests, the store's verbs, archives in and out, import.
pub mod formats;
pub mod import;
pub mod manifest;
pub mod store;

pub use store::Images;
