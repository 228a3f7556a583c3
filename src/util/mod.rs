pub mod base64;
pub mod hash;
pub mod random;
