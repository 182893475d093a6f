"""Identities: organization CAs, certificates with roles, CRLs, membership, keystores.

A member is an X.509 certificate issued by an organization's CA; its role is
the certificate's OU (Fabric's NodeOUs). ``Membership`` decides whether a
certificate may act under a chain configuration; ``CertificateAuthority``
issues and revokes; ``FileKeystore`` keeps private keys encrypted at rest.
"""
