//! Generated gRPC code for every invoicer service, and the file descriptor set that the
//! servers hand to gRPC reflection.
//!
//! Only each service's `api.rs` and the CLI use these types; domain code has its own.

#![allow(unreachable_pub, clippy::all)]

/// Encoded `FileDescriptorSet` of every invoicer package, for server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/invoicer_descriptor.bin"));

pub mod types {
    pub mod v1 {
        tonic::include_proto!("invoicer.types.v1");
    }
}

pub mod invoice_query {
    pub mod v1 {
        tonic::include_proto!("invoicer.invoice_query.v1");
    }
}

pub mod pdf_render {
    pub mod v1 {
        tonic::include_proto!("invoicer.pdf_render.v1");
    }
}

pub mod mail_delivery {
    pub mod v1 {
        tonic::include_proto!("invoicer.mail_delivery.v1");
    }
}

pub mod audit_log {
    pub mod v1 {
        tonic::include_proto!("invoicer.audit_log.v1");
    }
}

pub mod orchestrator {
    pub mod v1 {
        tonic::include_proto!("invoicer.orchestrator.v1");
    }
}

#[cfg(test)]
mod tests {
    use prost::Message;

    #[test]
    fn descriptor_set_decodes_with_every_service() {
        let set = prost_types::FileDescriptorSet::decode(super::FILE_DESCRIPTOR_SET).unwrap();
        let services: Vec<String> = set
            .file
            .iter()
            .flat_map(|file| {
                let package = file.package().to_owned();
                file.service
                    .iter()
                    .map(move |s| format!("{package}.{}", s.name()))
            })
            .collect();
        for expected in [
            "invoicer.invoice_query.v1.InvoiceQueryService",
            "invoicer.pdf_render.v1.PdfRenderService",
            "invoicer.mail_delivery.v1.MailDeliveryService",
            "invoicer.audit_log.v1.AuditLogService",
            "invoicer.orchestrator.v1.OrchestratorService",
        ] {
            assert!(
                services.iter().any(|s| s == expected),
                "{expected} missing: {services:?}"
            );
        }
    }
}
