// Every ECR registry host form kube-ecrlogin accepts, with where its token's requests must go: the
// ECR (or ECR Public) and STS endpoints the AWS SDK resolves for it, the SigV4 scope they are signed
// for, and the partition its roles and sessions live in. Shared by the endpoint tests (the SDK's own
// resolution, no override) and the end-to-end tests through the AWS test server.

export interface RegistryForm {
  /** A sentence naming the form. */
  readonly name: string;
  readonly host: string;
  readonly partition: string;
  /** The region the token and STS requests are signed for. */
  readonly region: string;
  /** `ecr` or `ecr-public`: the SigV4 service of the token request. */
  readonly service: 'ecr' | 'ecr-public';
  /** https://host/ of the token request. */
  readonly tokenUrl: string;
  /** https://host/ of the STS requests that go with it. */
  readonly stsUrl: string;
}

export const registryForms: readonly RegistryForm[] = [
  {
    name: 'standard',
    host: '123456789012.dkr.ecr.us-east-1.amazonaws.com',
    partition: 'aws',
    region: 'us-east-1',
    service: 'ecr',
    tokenUrl: 'https://api.ecr.us-east-1.amazonaws.com/',
    stsUrl: 'https://sts.us-east-1.amazonaws.com/',
  },
  {
    name: 'standard, written upper-case',
    host: '123456789012.DKR.ECR.EU-WEST-1.AMAZONAWS.COM',
    partition: 'aws',
    region: 'eu-west-1',
    service: 'ecr',
    tokenUrl: 'https://api.ecr.eu-west-1.amazonaws.com/',
    stsUrl: 'https://sts.eu-west-1.amazonaws.com/',
  },
  {
    name: 'FIPS',
    host: '123456789012.dkr.ecr-fips.us-east-2.amazonaws.com',
    partition: 'aws',
    region: 'us-east-2',
    service: 'ecr',
    tokenUrl: 'https://api.ecr-fips.us-east-2.amazonaws.com/',
    stsUrl: 'https://sts-fips.us-east-2.amazonaws.com/',
  },
  {
    name: 'dual-stack',
    host: '123456789012.dkr-ecr.eu-central-1.on.aws',
    partition: 'aws',
    region: 'eu-central-1',
    service: 'ecr',
    tokenUrl: 'https://ecr.eu-central-1.api.aws/',
    stsUrl: 'https://sts.eu-central-1.api.aws/',
  },
  {
    name: 'dual-stack FIPS',
    host: '123456789012.dkr-ecr-fips.us-west-2.on.aws',
    partition: 'aws',
    region: 'us-west-2',
    service: 'ecr',
    tokenUrl: 'https://ecr-fips.us-west-2.api.aws/',
    stsUrl: 'https://sts-fips.us-west-2.api.aws/',
  },
  {
    name: 'China',
    host: '123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn',
    partition: 'aws-cn',
    region: 'cn-north-1',
    service: 'ecr',
    tokenUrl: 'https://api.ecr.cn-north-1.amazonaws.com.cn/',
    stsUrl: 'https://sts.cn-north-1.amazonaws.com.cn/',
  },
  {
    name: 'China dual-stack',
    host: '123456789012.dkr-ecr.cn-northwest-1.on.amazonwebservices.com.cn',
    partition: 'aws-cn',
    region: 'cn-northwest-1',
    service: 'ecr',
    tokenUrl: 'https://ecr.cn-northwest-1.api.amazonwebservices.com.cn/',
    stsUrl: 'https://sts.cn-northwest-1.api.amazonwebservices.com.cn/',
  },
  {
    name: 'GovCloud',
    host: '123456789012.dkr.ecr.us-gov-east-1.amazonaws.com',
    partition: 'aws-us-gov',
    region: 'us-gov-east-1',
    service: 'ecr',
    tokenUrl: 'https://api.ecr.us-gov-east-1.amazonaws.com/',
    stsUrl: 'https://sts.us-gov-east-1.amazonaws.com/',
  },
  {
    // GovCloud's STS endpoints are FIPS endpoints already: the SDK's FIPS variant is the same host.
    name: 'GovCloud FIPS',
    host: '123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com',
    partition: 'aws-us-gov',
    region: 'us-gov-west-1',
    service: 'ecr',
    tokenUrl: 'https://api.ecr-fips.us-gov-west-1.amazonaws.com/',
    stsUrl: 'https://sts.us-gov-west-1.amazonaws.com/',
  },
  {
    name: 'GovCloud dual-stack FIPS',
    host: '123456789012.dkr-ecr-fips.us-gov-west-1.on.aws',
    partition: 'aws-us-gov',
    region: 'us-gov-west-1',
    service: 'ecr',
    tokenUrl: 'https://ecr-fips.us-gov-west-1.api.aws/',
    stsUrl: 'https://sts-fips.us-gov-west-1.api.aws/',
  },
  {
    name: 'European Sovereign Cloud',
    host: '123456789012.dkr.ecr.eusc-de-east-1.amazonaws.eu',
    partition: 'aws-eusc',
    region: 'eusc-de-east-1',
    service: 'ecr',
    tokenUrl: 'https://api.ecr.eusc-de-east-1.amazonaws.eu/',
    stsUrl: 'https://sts.eusc-de-east-1.amazonaws.eu/',
  },
  {
    name: 'ISO (C2S)',
    host: '123456789012.dkr.ecr.us-iso-east-1.c2s.ic.gov',
    partition: 'aws-iso',
    region: 'us-iso-east-1',
    service: 'ecr',
    tokenUrl: 'https://api.ecr.us-iso-east-1.c2s.ic.gov/',
    stsUrl: 'https://sts.us-iso-east-1.c2s.ic.gov/',
  },
  {
    name: 'ISO-B (SC2S)',
    host: '123456789012.dkr.ecr.us-isob-east-1.sc2s.sgov.gov',
    partition: 'aws-iso-b',
    region: 'us-isob-east-1',
    service: 'ecr',
    tokenUrl: 'https://api.ecr.us-isob-east-1.sc2s.sgov.gov/',
    stsUrl: 'https://sts.us-isob-east-1.sc2s.sgov.gov/',
  },
  {
    name: 'ISO-E',
    host: '123456789012.dkr.ecr.eu-isoe-west-1.cloud.adc-e.uk',
    partition: 'aws-iso-e',
    region: 'eu-isoe-west-1',
    service: 'ecr',
    tokenUrl: 'https://api.ecr.eu-isoe-west-1.cloud.adc-e.uk/',
    stsUrl: 'https://sts.eu-isoe-west-1.cloud.adc-e.uk/',
  },
  {
    name: 'ISO-F',
    host: '123456789012.dkr.ecr.us-isof-south-1.csp.hci.ic.gov',
    partition: 'aws-iso-f',
    region: 'us-isof-south-1',
    service: 'ecr',
    tokenUrl: 'https://api.ecr.us-isof-south-1.csp.hci.ic.gov/',
    stsUrl: 'https://sts.us-isof-south-1.csp.hci.ic.gov/',
  },
  {
    name: 'ECR Public',
    host: 'public.ecr.aws',
    partition: 'aws',
    region: 'us-east-1',
    service: 'ecr-public',
    tokenUrl: 'https://api.ecr-public.us-east-1.amazonaws.com/',
    stsUrl: 'https://sts.us-east-1.amazonaws.com/',
  },
  {
    name: 'ECR Public dual-stack',
    host: 'ecr-public.aws.com',
    partition: 'aws',
    region: 'us-east-1',
    service: 'ecr-public',
    tokenUrl: 'https://ecr-public.us-east-1.api.aws/',
    stsUrl: 'https://sts.us-east-1.api.aws/',
  },
];

/** A role in the form's partition. */
export function roleIn(partition: string, name = 'pull'): string {
  return `arn:${partition}:iam::111122223333:role/${name}`;
}
