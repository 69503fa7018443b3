//! Linux capabilities of the container process (all five sets).
